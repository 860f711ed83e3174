"""essentia's algorithms (``essentia.standard``), imported with essentia's INFO log off.

Importing them announces ``MusicExtractorSVM: no classifier models were configured by
default`` on stderr; the processes that import playlista's features (the flow's, the
workers') should print only their own output.
"""

import essentia

essentia.log.infoActive = False

import essentia.standard as es  # noqa: E402

__all__ = ["es"]
