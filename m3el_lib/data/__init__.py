"""The data: the release's record format (`schema`), loading and validation (`io`, with `errors`
and `picture_paths`), the release's own layout (`release`), safe picture opening (`images`), the
one answer to "which dataset" (`datasets`), the download registry (`registry`, with its
`registrations`), provenance written beside every result (`provenance`), quick summaries
(`summary`), exports to the formats trainers read (`export`: WebDataset, Parquet, Hugging Face
datasets), a release-sized synthetic release (`synth_release`) and tiny synthetic datasets for
tests (`synthetic`)."""
