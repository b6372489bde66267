"""The data: the release's record format (`schema`), loading and validation (`io`, with `errors`
and `picture_paths`), the release's own layout (`release`), safe picture opening (`images`), the
one answer to "which dataset" (`datasets`), the download registry (`registry`), provenance written
beside every result (`provenance`), quick summaries (`summary`) and tiny synthetic datasets for
tests (`synthetic`)."""
