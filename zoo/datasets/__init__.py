"""Dataset loaders and the data contract: `base` (DatasetInfo, RawData, splits and scaling),
`synthetic` and `mnist1d` (generated offline), `files` (the standard files, read from disk).

A registration in core.spec.datasets names its loader here; a loader returns `RawData`.
"""
