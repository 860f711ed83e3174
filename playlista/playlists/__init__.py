"""Playlists from an analysed library: rules, similar, path, harmonic and clusters.

The methods are pure (numpy in, lists of indices out); :mod:`playlista.playlists.build`
turns a :class:`~playlista.playlists.model.PlaylistSpec` and the library's
:class:`~playlista.playlists.model.Tracks` into playlists; :mod:`.m3u` writes them.
"""
