"""m3el_lib: the library behind the M³EL companion (arXiv 2410.18096).

Data model (`schema`), release-format I/O and validation (`io`), paths and profiles (`config`),
dataset construction (`construction`), statistics (`stats`), models and evaluation, CLIP_ND
training (`training`) and the `m3el` command line (`cli`). See docs/ARCHITECTURE.md.
"""
__version__ = "0.1.0"
