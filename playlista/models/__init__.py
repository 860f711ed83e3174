"""Pretrained neural models: the MusiCNN taggers and their embeddings (:mod:`.musicnn`).

Importing this package loads nothing; :mod:`playlista.models.musicnn` imports TensorFlow.
"""
