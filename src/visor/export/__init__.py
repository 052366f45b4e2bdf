"""Writing a dataset out in the formats training code reads: one module per format, each a
pure translation from `ExportSample`s to files under a folder (the job decides which samples,
where images come from, and moves the folder into place whole)."""
