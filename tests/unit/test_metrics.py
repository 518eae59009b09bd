"""The Prometheus text format of hub.metrics, on a fake snapshot (no services)."""

from __future__ import annotations

from hub.metrics import FAMILIES, Snapshot, render


def _snapshot() -> Snapshot:
    return Snapshot(
        updates={("dwp", "review"): 3, ("la", "create"): 10, ("dwp", "link"): 7},
        review_backlog={"shielded_candidate": 2, "possible_match": 1},
        review_oldest_age={"shielded_candidate": 125.5, "possible_match": 3.0},
        dead_letters={"invalid_date_of_birth": 4},
        outbox_pending=6,
        queue_depth={"hub.inbound": 12, "hub.parking.dead": 0, "hub.held.dwp": 5},
        queue_consumers={"hub.inbound": 2, "hub.parking.dead": 1},
        broker_up=True,
        paused={"dwp": 1, "la": 0},
        outbox_withheld=2,
    )


def test_every_family_has_help_and_type_before_its_samples() -> None:
    lines = render(_snapshot()).splitlines()
    for name, kind, _ in FAMILIES:
        help_at = lines.index(next(x for x in lines if x.startswith(f"# HELP {name} ")))
        assert lines[help_at + 1] == f"# TYPE {name} {kind}"
        prefixes = (name + "{", name + " ", name + "_bucket{", name + "_sum ", name + "_count ")
        samples = [i for i, x in enumerate(lines) if x.startswith(prefixes)]
        assert samples and min(samples) > help_at + 1, name
    assert "# TYPE hub_updates_total counter" in lines
    assert "# TYPE hub_review_backlog gauge" in lines


def test_samples_names_labels_and_values() -> None:
    text = render(_snapshot())
    assert text.endswith("\n")
    lines = set(text.splitlines())
    assert 'hub_updates_total{source="la",decision="create"} 10' in lines
    assert 'hub_updates_total{source="dwp",decision="review"} 3' in lines
    assert 'hub_review_backlog{reason="shielded_candidate"} 2' in lines
    assert 'hub_review_oldest_age_seconds{reason="shielded_candidate"} 125.5' in lines
    assert 'hub_review_oldest_age_seconds{reason="possible_match"} 3' in lines
    assert 'hub_dead_letters{reason="invalid_date_of_birth"} 4' in lines
    assert "hub_outbox_pending 6" in lines
    assert 'hub_queue_depth{queue="hub.inbound"} 12' in lines
    assert 'hub_queue_consumers{queue="hub.parking.dead"} 1' in lines
    assert "hub_broker_up 1" in lines
    # A paused source, and what waits for it (found by a probe: no status showed it).
    assert 'hub_source_paused{source="dwp"} 1' in lines
    assert 'hub_source_paused{source="la"} 0' in lines
    assert 'hub_queue_depth{queue="hub.held.dwp"} 5' in lines
    assert "hub_outbox_withheld 2" in lines


def test_sample_lines_are_well_formed_and_sorted() -> None:
    import re

    sample = re.compile(r'^[a-z_]+(\{([a-z_]+="(?:[^"\\\n]|\\.)*",?)+\})? -?[0-9.e+]+$')
    body = [x for x in render(_snapshot()).splitlines() if not x.startswith("#")]
    assert body and all(sample.match(x) for x in body), body
    updates = [x for x in body if x.startswith("hub_updates_total")]
    assert updates == sorted(updates)


def test_empty_snapshot_and_broker_down() -> None:
    text = render(Snapshot(broker_up=False))
    lines = text.splitlines()
    assert "hub_broker_up 0" in lines and "hub_outbox_pending 0" in lines
    assert not any(x.startswith("hub_queue_depth{") for x in lines)
    assert "# TYPE hub_queue_depth gauge" in lines  # the family is still described


def test_label_values_are_escaped() -> None:
    text = render(Snapshot(dead_letters={'odd"reason\\with\nnewline': 1}))
    assert 'hub_dead_letters{reason="odd\\"reason\\\\with\\nnewline"} 1' in text.splitlines()


def test_latency_histogram() -> None:
    snap = _snapshot()
    snap.latency_buckets = {0.05: 1, 0.1: 3, 0.25: 7}
    snap.latency_buckets.update({b: 9 for b in (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)})
    snap.latency_count, snap.latency_sum = 10, 4.25
    lines = set(render(snap).splitlines())
    assert "# TYPE hub_processing_latency_seconds histogram" in lines
    assert 'hub_processing_latency_seconds_bucket{le="0.1"} 3' in lines
    assert 'hub_processing_latency_seconds_bucket{le="60"} 9' in lines
    assert 'hub_processing_latency_seconds_bucket{le="+Inf"} 10' in lines
    assert "hub_processing_latency_seconds_sum 4.25" in lines
    assert "hub_processing_latency_seconds_count 10" in lines
