"""The book: executing the notebooks under a dependency-keyed cache and building the Jupyter Book
(`runner`), the headless-browser check of the built pages (`browser`) and the figures drawn for
the book's own pages (`figures`)."""
