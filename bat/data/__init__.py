"""Beats from the store to the model: windows and padding (``dataset``), the song split (``split``) and a
store of made-up songs for tests and smoke runs (``synthetic``)."""

from bat.data.dataset import EvalWindows, StoreHandle, TrainWindows, collate, ResumableSampler, song_windows
from bat.data.split import split_songs

__all__ = ["EvalWindows", "StoreHandle", "TrainWindows", "collate", "ResumableSampler", "song_windows", "split_songs"]
