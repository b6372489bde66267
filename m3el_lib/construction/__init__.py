"""Dataset construction: knowledge sources, the stages, the end-to-end build, the M³EL-mini sample.

`source.KnowledgeSource` is the interface; `snapshot.SnapshotSource` (offline, committed data) and
`wikimedia.WikimediaSource` (live) implement it. `stages` holds one function per stage,
`build.build_dataset` runs them resumably, `sample.ensure_sample` provides M³EL-mini.
"""
