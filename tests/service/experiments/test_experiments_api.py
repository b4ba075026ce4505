"""POST/GET /v1/experiments against a real database (no worker needed)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import canonical_spec


def test_canonical_spec_is_accepted_as_written(client: TestClient) -> None:
    response = client.post("/v1/experiments", json=canonical_spec())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["attempts"] == 0
    assert body["activation"] == "noisy_relu"
    assert body["spec"]["activation"]["params"]["sigma"] == 0.3
    assert body["spec"]["training"]["epochs"] == 20
    assert body["id"].startswith("exp_")
    fetched = client.get(f"/v1/experiments/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["spec"] == body["spec"]


def test_defaults_fill_everything_but_dataset_model_activation(client: TestClient) -> None:
    minimal = {
        "dataset": {"name": "mnist1d"},
        "model": {"arch": "mlp"},
        "activation": {"name": "relu"},
    }
    body = client.post("/v1/experiments", json=minimal).json()
    assert body["spec"]["optimizer"]["name"] == "adam"
    assert body["spec"]["noise_schedule"]["kind"] == "constant"
    assert body["spec"]["seed"] == 0


def _problem(client: TestClient, spec: dict) -> dict:
    response = client.post("/v1/experiments", json=spec)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 422 and body["type"].endswith("/invalid-request")
    return body


def test_out_of_range_value_names_the_field_path(client: TestClient) -> None:
    body = _problem(client, canonical_spec(training={"epochs": 0}))
    assert body["errors"][0]["path"] == "training.epochs"
    assert "training.epochs" in body["detail"]


def test_union_member_field_path_has_no_tag(client: TestClient) -> None:
    body = _problem(client, canonical_spec(dataset={"name": "mnist1d", "num_samples": -1}))
    assert body["errors"][0]["path"] == "dataset.num_samples"


def test_unknown_activation_lists_valid_names(client: TestClient) -> None:
    body = _problem(client, canonical_spec(activation={"name": "swishy"}))
    error = body["errors"][0]
    assert error["path"] == "activation.name"
    for valid in ("relu", "noisy_relu", "hard_tanh", "noisy_hard_tanh"):
        assert valid in error["message"]


def test_unknown_dataset_lists_valid_names(client: TestClient) -> None:
    body = _problem(client, canonical_spec(dataset={"name": "imagenet"}))
    error = body["errors"][0]
    assert error["path"] == "dataset"
    assert "mnist1d" in error["message"] and "digits" in error["message"]


def test_unknown_activation_param_is_named(client: TestClient) -> None:
    body = _problem(
        client, canonical_spec(activation={"name": "noisy_relu", "params": {"sigmaa": 0.3}})
    )
    assert "sigmaa" in body["errors"][0]["message"]
    assert "sigma" in body["errors"][0]["message"]


def test_unknown_fields_are_rejected(client: TestClient) -> None:
    body = _problem(client, {**canonical_spec(), "epochz": 3})
    assert body["errors"][0]["path"] == "epochz"
    body = _problem(client, canonical_spec(optimizer={"name": "adam", "lrr": 1}))
    assert body["errors"][0]["path"] == "optimizer.lrr"


def test_missing_required_section_is_named(client: TestClient) -> None:
    spec = canonical_spec()
    del spec["model"]
    body = _problem(client, spec)
    assert body["errors"][0]["path"] == "model"


def test_malformed_json_is_a_problem_not_a_crash(client: TestClient) -> None:
    response = client.post(
        "/v1/experiments", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def test_unknown_experiment_is_404_problem(client: TestClient) -> None:
    response = client.get("/v1/experiments/exp_nope")
    assert response.status_code == 404
    assert response.json()["type"].endswith("/not-found")
    assert client.get("/v1/experiments/exp_nope/metrics").status_code == 404


def test_list_filters_by_status_and_paginates(client: TestClient) -> None:
    ids = [
        client.post("/v1/experiments", json=canonical_spec(seed=i)).json()["id"] for i in range(5)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/experiments", params=params).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # newest first, each exactly once
    queued = client.get("/v1/experiments", params={"status": "queued"}).json()["items"]
    assert len(queued) == 5
    assert client.get("/v1/experiments", params={"status": "failed"}).json()["items"] == []
    bad = client.get("/v1/experiments", params={"status": "bogus"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"] == "query.status"


def test_list_filters_by_activation_and_tag(client: TestClient) -> None:
    client.post(
        "/v1/experiments",
        json=canonical_spec(tags=["baseline"], activation={"name": "relu", "params": {}}),
    )
    client.post("/v1/experiments", json=canonical_spec())
    relu = client.get("/v1/experiments", params={"activation": "relu"}).json()["items"]
    assert [e["activation"] for e in relu] == ["relu"]
    tagged = client.get("/v1/experiments", params={"tag": "baseline"}).json()["items"]
    assert len(tagged) == 1 and tagged[0]["tags"] == ["baseline"]


def test_metrics_of_a_new_experiment_are_empty(client: TestClient) -> None:
    exp = client.post("/v1/experiments", json=canonical_spec()).json()
    body = client.get(f"/v1/experiments/{exp['id']}/metrics").json()
    assert body == {"experiment_id": exp["id"], "inherited_through_step": None, "series": {}}


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_database_and_broker(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_values_the_database_cannot_store_are_422(client: TestClient) -> None:
    # Postgres text cannot hold NUL; the same request must not be a 500 on any backend.
    listed = client.get("/v1/experiments", params={"cursor": "\x00"})
    assert listed.status_code == 422
    created = client.post("/v1/experiments", json=canonical_spec(name="a\x00b"))
    assert created.status_code == 422 and "name: NUL" in created.text
    params = {"sigma": 0.3, "distribution": "gauss\x00ian"}
    nested = client.post(
        "/v1/experiments", json=canonical_spec(activation={"name": "noisy_relu", "params": params})
    )
    assert nested.status_code == 422 and "activation.params.distribution: NUL" in nested.text
    exp_id = client.post("/v1/experiments", json=canonical_spec()).json()["id"]
    huge = client.get(f"/v1/experiments/{exp_id}/events", params={"after": 2**64})
    assert huge.status_code == 422
