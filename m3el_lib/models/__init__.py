"""The models: loading open_clip models and the sample dual encoder (`loading`), turning mentions
and entities into embeddings per modality (`encoders`), the TI fusion (`fusion`) and the on-disk
embedding cache (`embedding_cache`)."""
