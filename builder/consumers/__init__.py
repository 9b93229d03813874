"""`builder pin`: rewrite the image references of consumer files to pushed digests.

    model       the values: consumer specs, pins, edits, findings, the report
    config      builder.yaml's `consumers:` block, parsed and checked (pure)
    yamltext    exact scalar spans in YAML text and splices that keep every other byte
    kinds       where each kind of consumer names images, and the edits a pin makes (pure)
    metadata    a build's metadata file -> the pins one run may write (pure)
    tags        a branch's tags in the registry -> the pins one run may write (pure)
    pin         run_pin: the edge that globs, reads, writes all files or none, and commits
    render      the report as text

Imports point inward: only `pin` reads or writes files, runs git or asks the registry
(through the resolver its source carries).
"""
