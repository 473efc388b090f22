"""Ready-made MIDI corpora for bat.

``music21_corpus`` turns the scores bundled with music21 into one MIDI file per piece (written form, true bar
lines: ``score_midi``) plus ``manifest.csv``; ``demo`` picks a small fixed subset of it for the demo and the tests. The
manifest schema lives in ``manifest`` so readers never parse the CSV by hand.
"""
