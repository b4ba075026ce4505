"""Pure PyTorch: the networks and the datasets that actlab's registrations build.

`zoo.models` holds the model builders (MLP, CNN, GRU, LSTM), `zoo.datasets` the loaders and
the data contract (`DatasetInfo`, `RawData`, the splits). Like `activations`, which it uses,
this package imports nothing of actlab's server: the registrations in `core.spec` refer to
its functions directly, and the engine in `worker` calls them through those registrations.
"""
