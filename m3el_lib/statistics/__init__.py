"""Chapter 2, dataset statistics: the pure per-instance statistics (`core`), the comparison table
of MEL datasets (`mel_datasets`) and the pipeline that loads a dataset and writes the tables and
figures with provenance (`pipeline`)."""
