"""Splink 4 (DuckDB backend) deduplicating a child-benefit style CSV extract.

Run by bench/bulk_load_vs_splink.py with the interpreter of a separate venv that
has splink installed (never the hub's own): it imports nothing from the hub.

    python bench/splink_dedupe.py EXTRACT.csv PAIRS_OUT.csv [--threshold 0.95]

Blocking rules and comparisons are chosen to be comparable with the hub's
(hub/match/blocking.py, hub/match/score.py): the NHS number; the date of birth
with a surname or given-name initial; both names with the year of birth (a wrong
day or month); the surname and given initial with day and month (a wrong year);
the postcode with the given initial; and given/family names transposed on the
same date of birth. Comparisons: given and family names (exact, Jaro-Winkler
bands), date of birth, sex, postcode, NHS number.

Training (not timed as deduplication): u by random sampling, the prior from the
NHS number rule, m by expectation-maximisation on two blocking rules. Timed:
reading the CSV into DuckDB, predict (pairs scored over the blocking rules, kept
at match probability >= 0.5) and clustering at the threshold (connected
components). Prints one JSON object of timings and counts on stdout, and writes
the predicted duplicate pairs (probability >= threshold) to PAIRS_OUT.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("extract")
    p.add_argument("pairs_out")
    p.add_argument("--threshold", type=float, default=0.95)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import duckdb
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    out: dict[str, object] = {}
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}").fetchall()
    con.execute(
        "CREATE TABLE extract AS SELECT source_record_id AS unique_id,"
        " nullif(nhs_number, '') AS nhs_number, nullif(lower(given_name), '') AS given_name,"
        " nullif(lower(family_name), '') AS family_name,"
        " nullif(date_of_birth, '') AS date_of_birth, nullif(sex, '') AS sex,"
        " nullif(upper(replace(postcode, ' ', '')), '') AS postcode"
        " FROM read_csv(?, header = true, all_varchar = true)",
        [args.extract],
    ).fetchall()
    rows = con.execute("SELECT count(*) FROM extract").fetchone()[0]  # type: ignore[index]
    out["records"] = rows
    out["read_seconds"] = round(time.perf_counter() - t0, 2)

    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[
            block_on("nhs_number"),
            block_on("date_of_birth", "substr(family_name, 1, 1)"),
            block_on("date_of_birth", "substr(given_name, 1, 1)"),
            block_on("family_name", "given_name", "substr(date_of_birth, 1, 4)"),
            block_on("family_name", "substr(given_name, 1, 1)", "substr(date_of_birth, 6, 5)"),
            block_on("postcode", "substr(given_name, 1, 1)"),
            "l.given_name = r.family_name AND l.family_name = r.given_name"
            " AND l.date_of_birth = r.date_of_birth",
        ],
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("family_name"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True,
                                     datetime_format="%Y-%m-%d"),
            cl.ExactMatch("sex"),
            cl.PostcodeComparison("postcode"),
            cl.ExactMatch("nhs_number"),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    db_api = DuckDBAPI(connection=con)
    linker = Linker("extract", settings, db_api)

    t = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        [block_on("nhs_number")], recall=0.6)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("date_of_birth", "substr(family_name, 1, 1)"))
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("postcode", "substr(given_name, 1, 1)"))
    out["train_seconds"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    out["predict_seconds"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=args.threshold)
    n_clusters = con.execute(
        f"SELECT count(DISTINCT cluster_id) FROM {clusters.physical_name}").fetchone()[0]  # type: ignore[index]
    out["cluster_seconds"] = round(time.perf_counter() - t, 2)
    out["clusters"] = n_clusters
    out["pairs_at_0.5"] = con.execute(
        f"SELECT count(*) FROM {predictions.physical_name}").fetchone()[0]  # type: ignore[index]
    # Duplicate pairs found: records in one cluster, each with its cluster's first.
    con.execute(
        f"COPY (SELECT c.unique_id AS a, f.first AS b FROM {clusters.physical_name} c"
        f" JOIN (SELECT cluster_id, min(unique_id) AS first FROM {clusters.physical_name}"
        f" GROUP BY cluster_id) f USING (cluster_id) WHERE c.unique_id <> f.first)"
        f" TO '{args.pairs_out}' (HEADER, DELIMITER ',')").fetchall()
    out["dedupe_seconds"] = round(
        float(out["read_seconds"]) + float(out["predict_seconds"])  # type: ignore[arg-type]
        + float(out["cluster_seconds"]), 2)  # type: ignore[arg-type]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
