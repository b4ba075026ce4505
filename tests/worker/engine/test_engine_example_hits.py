"""A finished run returns which test examples its final model got right: the vector whose
mean is the summary's test/acc (what a comparison's bootstrap over test examples needs)."""

from __future__ import annotations

from pathlib import Path

import torch

from core.examples import decode_hits, encode_hits
from tests.worker.engine.engine_factories import Recorder, make_spec
from worker import engine
from worker.engine import checkpoint as ckpt
from worker.engine.packed import PackMember, train_pack
from worker.engine.setup import build_run


def _spec(seed: int = 0, sigma: float = 0.3):
    return make_spec(seed=seed, activation={"name": "noisy_relu", "params": {"sigma": sigma}})


def test_the_hits_are_the_final_models_on_each_test_example(data_dir: Path, tmp_path: Path) -> None:
    spec = _spec()
    result = engine.train(
        spec, callbacks=Recorder(), data_dir=data_dir, checkpoint_path=tmp_path / "c.pt"
    )
    hits = result.test_hits
    assert hits is not None and hits.dtype == torch.bool
    # Recomputed here from the final checkpoint, without the engine's evaluation code.
    run = build_run(spec, data_dir)
    ckpt.restore(run, ckpt.load(tmp_path / "c.pt"))
    x, y = run.data.tensors["test"]
    run.model.eval()
    with torch.no_grad():
        expected = run.model(x).argmax(dim=1) == y
    assert torch.equal(hits, expected)
    assert float(hits.double().mean()) == result.summary["test/acc"]
    assert 0 < int(hits.sum()) < len(hits)  # a real mix, not all right or all wrong


def test_a_packs_members_return_their_own_hits(data_dir: Path) -> None:
    specs = [_spec(seed=0, sigma=0.1), _spec(seed=1, sigma=0.5)]
    members = [PackMember(s, Recorder(), None) for s in specs]
    outcomes = train_pack(members, data_dir=data_dir)
    alone = [engine.train(s, callbacks=Recorder(), data_dir=data_dir) for s in specs]
    for packed, single in zip(outcomes, alone, strict=True):
        assert isinstance(packed, engine.TrainResult)
        assert packed.test_hits is not None and single.test_hits is not None
        assert float(packed.test_hits.double().mean()) == packed.summary["test/acc"]
        # The pack's stacked float sums may flip a near-tie; the members agree almost always.
        assert (packed.test_hits == single.test_hits).double().mean() > 0.99
    assert not torch.equal(outcomes[0].test_hits, outcomes[1].test_hits)


def test_hits_survive_their_stored_form() -> None:
    for n in (0, 1, 7, 8, 9, 1000):
        hits = torch.rand(n, generator=torch.Generator().manual_seed(n)) < 0.6
        stored = encode_hits(hits.numpy())
        assert stored["split"] == "test" and stored["n"] == n
        assert decode_hits(stored).tolist() == hits.tolist()
    assert len(encode_hits([True] * 1000)["hits"]) == 168  # 125 bytes in base64
    # What is not a stored vector of the test split reads as none, not as a wrong one.
    good = encode_hits([True, False, True])
    assert decode_hits(None) is None
    assert decode_hits(good, split="val") is None
    assert decode_hits({**good, "n": 9}) is None  # two bytes would be needed
    assert decode_hits({**good, "hits": "not base64!"}) is None
    assert decode_hits({"split": "test"}) is None
