#!/usr/bin/env python3
"""A black-box shielding probe for the hub: does a shielded child's whereabouts stay hidden?

It loads a population from "pds", shields ~30 children, then sends updates about them from
other sources (new surnames, typos, swapped or 1-January dates of birth, missing or wrong NHS
numbers, twins, namesakes, siblings and strangers at the refuge, out-of-order versions) and
judges each: linked to her shielded record or held for review is SAFE. It checks that no
refuge data reaches an open record, that shielded export lines carry no protected fields,
that no notification about her goes to a council other than her authority, and that review
and dlq lines reveal nothing protected. A second round of attacks follows (a source record
id hijack, neighbours, reformatted refuge addresses and phones, refuge GP and school, and A7:
a shielded child moving into a house where another family's open record is, SAFE only when
her authority gets an `alert.shield_check` naming that record), then operator actions
(review show / resolve with and without --authority, search, show, break-glass, a shield
takeover).

Written from ../shared/contract.md and ../shared/domain.md alone, never the hub's code.
Python 3.11 standard library only; nothing is imported from the hub. It drives only the
`hub` command line (the `hub` beside this interpreter, else the one on PATH) on a scratch
PostgreSQL database and RabbitMQ vhost, both removed at the end, and writes its artefacts
and report under /tmp/shieldprobe/run_<tag>/.

    python -m bench.blackbox_shielding        (PROBE_SEED=N optional, default 20261125)

Exit status 1 when any verdict is LEAK, else 0 (QUESTIONABLE does not fail).
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import time
from datetime import date

# The `hub` beside this interpreter (a venv's), else the one on PATH.
_BESIDE = os.path.join(os.path.dirname(sys.executable), "hub")
HUB = _BESIDE if os.path.exists(_BESIDE) else "hub"
TAG = secrets.token_hex(4)
DBNAME = f"sprobe_{TAG}"
VHOST = f"sprobe_{TAG}"
ENV = dict(os.environ)
ENV["HUB_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{DBNAME}"
ENV["HUB_AMQP_URL"] = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
OUT = f"/tmp/shieldprobe/run_{TAG}"
os.makedirs(OUT, exist_ok=True)

rng = random.Random(int(os.environ.get("PROBE_SEED", "20261125")))
LOG = open(f"{OUT}/commands.log", "w")
CMDS = []  # every command run: dict(args, rc, out, err)
VERDICTS = []  # every verdict given (probe table and round 2); any LEAK -> exit status 1
CONTRACT = []  # contract observations (violations)


def log(*a):
    msg = " ".join(str(x) for x in a)
    print(msg, flush=True)
    LOG.write(msg + "\n")
    LOG.flush()


# ---------------------------------------------------------------- commands
def hub(*args, timeout=900, expect=(0,), check_contract=True, quiet=False):
    argv = [HUB, *args]
    t0 = time.time()
    try:
        p = subprocess.run(
            argv, env=ENV, capture_output=True, text=True, timeout=timeout, cwd="/tmp"
        )
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = (
            "TIMEOUT",
            (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""),
            "",
        )
    rec = {
        "args": ["hub", *args],
        "rc": rc,
        "out": out,
        "err": err,
        "secs": round(time.time() - t0, 1),
    }
    CMDS.append(rec)
    LOG.write(f"$ {' '.join(rec['args'])}  -> rc={rc} ({rec['secs']}s)\n")
    if not quiet:
        LOG.write(f"  stdout[:2000]: {out[:2000]}\n  stderr[:2000]: {err[:2000]}\n")
    LOG.flush()
    if check_contract:
        contract_check(rec, expect)
    return rec


def contract_check(rec, expect):
    rc, err = rec["rc"], rec["err"]
    if "Traceback (most recent call last)" in err:
        CONTRACT.append(
            {
                "cmd": " ".join(rec["args"]),
                "rc": rc,
                "problem": "traceback on stderr",
                "stderr": err[-1500:],
            }
        )
    if rc not in expect:
        CONTRACT.append(
            {
                "cmd": " ".join(rec["args"]),
                "rc": rc,
                "problem": f"exit code {rc}, expected one of {expect}",
                "stdout": rec["out"][:800],
                "stderr": err[:800],
            }
        )
    if rc not in (0, "TIMEOUT"):
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        # argparse usage errors (rc 2) print a usage block + one error line; accept that
        if rc != 2 and len(lines) != 1:
            CONTRACT.append(
                {
                    "cmd": " ".join(rec["args"]),
                    "rc": rc,
                    "problem": f"error not one line on stderr ({len(lines)} lines)",
                    "stderr": err[:800],
                }
            )


def sh(cmd, timeout=120):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    LOG.write(f"$ {' '.join(cmd)} -> {p.returncode}\n{p.stdout[-500:]}{p.stderr[-500:]}\n")
    return p


# ---------------------------------------------------------------- data helpers
def nhs_check(d9):
    s = sum(int(c) * w for c, w in zip(d9, range(10, 1, -1), strict=False))
    r = 11 - s % 11
    if r == 11:
        r = 0
    return None if r == 10 else str(r)


USED_NHS = set()


def new_nhs():
    while True:
        d9 = "999" + "".join(rng.choice("0123456789") for _ in range(6))
        c = nhs_check(d9)
        if c is None or d9 + c in USED_NHS:
            continue
        USED_NHS.add(d9 + c)
        return d9 + c


def bad_check(n):
    return n[:9] + str((int(n[9]) + 1) % 10)


LAS = {
    "330": ("Birmingham", "B", "0121"),
    "341": ("Liverpool", "L", "0151"),
    "383": ("Leeds", "LS", "0113"),
    "380": ("Bradford", "BD", "01274"),
    "391": ("Newcastle upon Tyne", "NE", "0191"),
    "801": ("Bristol", "BS", "0117"),
    "856": ("Leicester", "LE", "0116"),
}
LA_CODES = list(LAS)
STREETS = [
    "Alcester Road",
    "Church Lane",
    "Station Road",
    "Victoria Street",
    "Park Avenue",
    "Mill Lane",
    "Queens Road",
    "Kings Drive",
    "Albert Terrace",
    "Grange Road",
    "Manor Way",
    "Chapel Street",
    "Highfield Road",
    "Springfield Avenue",
    "Orchard Close",
    "Westfield Road",
    "Holly Bank",
    "Beech Grove",
    "Elm Street",
    "Nelson Street",
]
REFUGE_STREETS = [
    "Larkspur Court",
    "Foxglove Mews",
    "Tansy Row",
    "Campion Walk",
    "Yarrow Place",
    "Bryony Close",
    "Sorrel Yard",
    "Vetch Gardens",
    "Teasel Rise",
    "Burdock Lane",
    "Cowslip Vale",
    "Speedwell Path",
    "Agrimony Court",
    "Betony Mews",
    "Celandine Row",
    "Dropwort Walk",
    "Eyebright Place",
    "Fleabane Close",
    "Gromwell Yard",
    "Henbit Gardens",
    "Knapweed Rise",
    "Lovage Lane",
    "Madder Vale",
    "Nettlebed Path",
    "Orpine Court",
    "Pennyroyal Mews",
    "Ragwort Row",
    "Samphire Walk",
    "Toadflax Place",
    "Valerian Close",
    "Woad Yard",
    "Bugloss Gardens",
    "Comfrey Rise",
    "Dittany Lane",
    "Feverfew Vale",
    "Groundsel Path",
    "Hyssop Court",
    "Jasione Mews",
    "Kingcup Row",
    "Lungwort Walk",
]
REFUGE_SCHOOLS = [
    "Quillfield",
    "Rookhaven",
    "Sallowmere",
    "Thornwick",
    "Umberleigh",
    "Vexford",
    "Wyndcliffe",
    "Yarrowby",
    "Zennor Vale",
    "Ashcombe Moor",
    "Brackenholt",
    "Cinderford Lea",
    "Dunmere",
    "Eskdale Rise",
    "Fallowfield Moor",
    "Gorsebrook",
    "Heatherlea",
    "Ivybridge Moor",
    "Juniper Hollow",
    "Kestrelmoor",
    "Linnetfold",
    "Merlinbrook",
    "Nightjar Hill",
    "Ospreydale",
    "Plovermead",
    "Quailbrook",
    "Ravenmoor",
    "Siskinfold",
    "Teal Hollow",
    "Upwoodmere",
    "Vireo Lea",
    "Wrenmere",
    "Xylo Park",
    "Yellowhammer Lea",
    "Zephyr Moor",
    "Alderhollow",
    "Birchmoor",
    "Cedarlea",
    "Damsonfold",
    "Elderhollow",
]
SURNAMES = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Patel",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Thomas",
    "Clarke",
    "Jackson",
    "Wood",
    "Harris",
    "Edwards",
    "Turner",
    "Martin",
    "Cooper",
    "Hill",
    "Ward",
    "Hughes",
    "Moore",
    "King",
    "Harrison",
    "Lewis",
    "Baker",
    "Lee",
    "Allen",
    "Morris",
    "Khan",
    "Ahmed",
    "Ali",
    "Begum",
    "Hussain",
    "Kaur",
    "Singh",
    "Nowak",
    "Okafor",
    "Mensah",
    "Murphy",
    "Kelly",
]
GIRLS = [
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Mia",
    "Ivy",
    "Lily",
    "Isabella",
    "Rosie",
    "Sophia",
    "Grace",
    "Freya",
    "Florence",
    "Willow",
    "Ella",
    "Evie",
    "Poppy",
    "Sophie",
    "Emily",
    "Chloe",
    "Jessica",
    "Hannah",
    "Aisha",
    "Zara",
    "Maryam",
    "Amira",
    "Zoe",
    "Ellie",
    "Eva",
    "Ruby",
]
BOYS = [
    "Oliver",
    "George",
    "Noah",
    "Arthur",
    "Leo",
    "Harry",
    "Oscar",
    "Jack",
    "Charlie",
    "Jacob",
    "Thomas",
    "James",
    "Henry",
    "Muhammad",
    "Freddie",
    "Theo",
    "Alfie",
    "Joshua",
    "Daniel",
    "Samuel",
    "Ethan",
    "Lucas",
    "Adam",
    "Yusuf",
    "Benjamin",
    "Matthew",
    "Joseph",
]
MIDDLES = [
    "Rose",
    "Grace",
    "May",
    "Louise",
    "Jane",
    "Marie",
    "James",
    "John",
    "Paul",
    "Lee",
    None,
    None,
    None,
]
MOTHERS = [
    "Anna",
    "Sarah",
    "Claire",
    "Nicola",
    "Emma",
    "Rachel",
    "Kerry",
    "Lisa",
    "Hayley",
    "Gemma",
    "Fatima",
    "Nadia",
    "Joanne",
    "Donna",
    "Amy",
    "Stacey",
    "Leanne",
    "Kirsty",
]

USED_PC = set()
USED_PHONE = set()


def postcode(la, refuge=False):
    prefix = LAS[la][1]
    letters = "PQRSTUWX" if refuge else "ABDEFGHJ"
    while True:
        pc = (
            f"{prefix}{rng.randint(1, 29)} "
            f"{rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"
        )
        if pc not in USED_PC:
            USED_PC.add(pc)
            return pc


def phone(la):
    while True:
        p = f"{LAS[la][2]} 496 {rng.randint(1000, 9999)}"
        if p not in USED_PHONE:
            USED_PHONE.add(p)
            return p


def schools_for(la):
    base = {
        "330": 103000,
        "341": 104000,
        "383": 107000,
        "380": 107100,
        "391": 108000,
        "801": 109000,
        "856": 120000,
    }[la]
    names = [
        "Oakfield Primary",
        "St Mary's CE Primary",
        "Northgate Academy",
        "Riverside High School",
    ]
    return [
        {"urn": str(base + i * 7 + 1), "name": f"{LAS[la][0]} {n}"} for i, n in enumerate(names)
    ]


def gps_for(la):
    pre = {
        "330": "M8",
        "341": "N8",
        "383": "B8",
        "380": "B7",
        "391": "A8",
        "801": "L8",
        "856": "C8",
    }[la]
    return [
        {"ods_code": f"{pre}{i:04d}", "name": f"{LAS[la][0]} {n} Medical Centre"}
        for i, n in enumerate(["Central", "Parkside", "Hillview"], start=1)
    ]


USED_ADDR = set()


def family_address(la):
    while True:
        line = f"{rng.randint(1, 220)} {rng.choice(STREETS)}"
        if (la, line) not in USED_ADDR:
            USED_ADDR.add((la, line))
            break
    return {"lines": [line], "town": LAS[la][0], "postcode": postcode(la), "la": la}


def rand_dob(lo=2008, hi=2024):
    while True:
        try:
            return date(rng.randint(lo, hi), rng.randint(1, 12), rng.randint(1, 28))
        except ValueError:
            pass


FAMILIES = []
CHILDREN = []  # dicts with: nhs, given, middle, family, dob(date), sex, fam (index)


def make_family(la=None, surname=None, kids=None, nkids=None, twins=False):
    la = la or rng.choice(LA_CODES)
    surname = surname or rng.choice(SURNAMES)
    fam = {
        "idx": len(FAMILIES),
        "la": la,
        "surname": surname,
        "address": family_address(la),
        "mother": f"{rng.choice(MOTHERS)} {surname}",
        "phone": phone(la),
        "school": rng.choice(schools_for(la)),
        "gp": rng.choice(gps_for(la)),
        "kids": [],
    }
    FAMILIES.append(fam)
    if kids is None:
        nkids = nkids or rng.choice([1, 1, 2, 2, 2, 3])
        kids = []
        first_dob = rand_dob()
        for k in range(nkids):
            sex = rng.choice(["female", "male"])
            given = rng.choice(GIRLS if sex == "female" else BOYS)
            if twins and k == 1:
                dob = kids[0][3]
            else:
                dob = first_dob if k == 0 else rand_dob()
            kids.append(
                (
                    given,
                    rng.choice(MIDDLES) if sex == "female" else rng.choice(MIDDLES[6:]),
                    sex,
                    dob,
                )
            )
    for given, middle, sex, dob in kids:
        c = {
            "nhs": new_nhs(),
            "given": given,
            "middle": middle,
            "family": surname,
            "dob": dob,
            "sex": sex,
            "fam": fam["idx"],
            "srid": None,
        }
        c["srid"] = f"PDS-{c['nhs']}"
        fam["kids"].append(len(CHILDREN))
        CHILDREN.append(c)
    return fam


def canonical_child(c, **over):
    fam = FAMILIES[c["fam"]]
    ch = {
        "nhs_number": c["nhs"],
        "upn": None,
        "given_name": c["given"],
        "middle_names": c["middle"],
        "family_name": c["family"],
        "former_family_names": [],
        "date_of_birth": c["dob"].isoformat(),
        "sex": c["sex"],
        "address": dict(fam["address"]),
        "carers": [{"name": fam["mother"], "relationship": "mother", "phone": fam["phone"]}],
        "education_setting": dict(fam["school"]),
        "gp_practice": dict(fam["gp"]),
        "services": [],
    }
    ch.update(over)
    return ch


def upd(source, srid, version, child):
    return {
        "source": source,
        "source_record_id": srid,
        "source_version": version,
        "kind": "upsert",
        "child": child,
    }


# ---------------------------------------------------------------- population
def build_population():
    # probe families are built explicitly by PROBES below; background here
    for _ in range(120):
        make_family(twins=rng.random() < 0.1, nkids=None)


# ---------------------------------------------------------------- probes
REFUGE = {}  # probe id -> refuge profile (tokens)


def refuge_profile(pid, i, la):
    street = REFUGE_STREETS[i]
    prof = {
        "address": {
            "lines": [f"Flat {i + 1}", f"{rng.randint(2, 90)} {street}"],
            "town": LAS[la][0],
            "postcode": postcode(la, refuge=True),
            "la": la,
        },
        "phone": f"07700 900{i:03d}",
        "svc_phone": f"07700 901{i:03d}",
        "school": {"urn": str(990100 + i), "name": f"{REFUGE_SCHOOLS[i]} Academy"},
        "gp": {"ods_code": f"Y9{i:04d}", "name": f"{REFUGE_SCHOOLS[i]} Health Centre"},
        "la": la,
    }
    prof["tokens"] = {
        "street": street,
        "postcode": prof["address"]["postcode"],
        "carer_phone": prof["phone"],
        "service_phone": prof["svc_phone"],
        "school_urn": prof["school"]["urn"],
        "school_name": prof["school"]["name"],
        "gp_ods": prof["gp"]["ods_code"],
        "gp_name": prof["gp"]["name"],
    }
    REFUGE[pid] = prof
    return prof


def refuge_fields(prof, carer_name, which=("address", "carers", "school", "gp", "services")):
    f = {}
    if "address" in which:
        f["address"] = prof["address"]
    if "carers" in which:
        f["carers"] = [{"name": carer_name, "relationship": "mother", "phone": prof["phone"]}]
    if "school" in which:
        f["education_setting"] = prof["school"]
    if "gp" in which:
        f["gp_practice"] = prof["gp"]
    if "services" in which:
        f["services"] = [{"name": "Refuge children's worker", "contact": prof["svc_phone"]}]
    return f


def other_la(la):
    return rng.choice([x for x in LA_CODES if x != la])


# dicts: id, kind, target (child idx), authority, updates [(phase, source, upd, role)], note
PROBES = []


def girl(given=None, middle=None, dob=None):
    return (given or rng.choice(GIRLS), middle, "female", dob or rand_dob(2010, 2021))


def build_probes():
    i = 0

    def new_probe(pid, kind, fam, tgt_pos=0, same_la_refuge=False):
        nonlocal i
        tgt = fam["kids"][tgt_pos]
        la = fam["la"]
        rla = la if same_la_refuge else other_la(la)
        prof = refuge_profile(pid, i, rla)
        i += 1
        p = {
            "id": pid,
            "kind": kind,
            "target": tgt,
            "authority": la,
            "refuge": prof,
            "updates": [],
            "family": fam["idx"],
        }
        PROBES.append(p)
        return p, CHILDREN[tgt], prof

    def add(p, phase, source, u, role="probe"):
        p["updates"].append({"phase": phase, "source": source, "update": u, "role": role})

    NEWNAMES = [
        "Fairbrother",
        "Ashworth",
        "Penhaligon",
        "Castellano",
        "Whitlock",
        "Marchetti",
        "Oyelaran",
        "Lindqvist",
        "Dunmore",
        "Rasmussen",
        "Trelawney",
        "Okonjo",
    ]

    # P01 refuge other LA, new surname, NHS present
    fam = make_family(kids=[girl()], surname="Hughes")
    p, c, r = new_probe("P01", "refuge in other LA, new surname, NHS number present", fam)
    ch = canonical_child(
        c,
        family_name=NEWNAMES[0],
        former_family_names=[c["family"]],
        **refuge_fields(r, f"Anna {NEWNAMES[0]}"),
    )
    add(p, 2, "la", upd("la", "LA-P01", 1, ch))

    # P02 refuge other LA, new surname, no NHS
    fam = make_family(kids=[girl()], surname="Walker")
    p, c, r = new_probe("P02", "refuge in other LA, new surname, no NHS number", fam)
    ch = canonical_child(
        c, nhs_number=None, family_name=NEWNAMES[1], **refuge_fields(r, f"Sarah {NEWNAMES[1]}")
    )
    add(p, 2, "dwp", upd("dwp", "CB-P02", 1, ch))

    # P03 new surname + typo in given name + no NHS
    fam = make_family(kids=[girl("Isabella")], surname="Roberts")
    p, c, r = new_probe("P03", "new surname + typo in given name (Isabella->Isabela), no NHS", fam)
    ch = canonical_child(
        c,
        nhs_number=None,
        given_name="Isabela",
        family_name=NEWNAMES[2],
        **refuge_fields(r, f"Claire {NEWNAMES[2]}"),
    )
    add(p, 2, "school", upd("school", "SCH-P03", 1, ch))

    # P04 dob day/month swapped + new address, no NHS
    fam = make_family(kids=[girl(dob=date(2014, 3, 9))], surname="Evans")
    p, c, r = new_probe(
        "P04",
        "date of birth day/month swapped (2014-03-09 -> 2014-09-03) + new address, no NHS",
        fam,
    )
    ch = canonical_child(
        c, nhs_number=None, date_of_birth="2014-09-03", **refuge_fields(r, fam["mother"])
    )
    add(p, 2, "dwp", upd("dwp", "CB-P04", 1, ch))

    # P05 dob one digit wrong + new address, no NHS
    fam = make_family(kids=[girl(dob=date(2013, 6, 17))], surname="Turner")
    p, c, r = new_probe(
        "P05", "date of birth one digit wrong (2013-06-17 -> 2013-06-27) + new address, no NHS", fam
    )
    ch = canonical_child(
        c, nhs_number=None, date_of_birth="2013-06-27", **refuge_fields(r, fam["mother"])
    )
    add(p, 2, "school", upd("school", "SCH-P05", 1, ch))

    # P06 NHS number present, everything else changed
    fam = make_family(kids=[girl("Chloe", dob=date(2012, 2, 14))], surname="Cooper")
    p, c, r = new_probe(
        "P06", "her NHS number present, names/DOB/sex all changed + new address", fam
    )
    ch = canonical_child(
        c,
        given_name="Tamsin",
        middle_names=None,
        family_name=NEWNAMES[3],
        date_of_birth="2015-11-30",
        sex="male",
        **refuge_fields(r, f"Rachel {NEWNAMES[3]}"),
    )
    add(p, 2, "la", upd("la", "LA-P06", 1, ch))

    # P07 middle name used as given name
    fam = make_family(kids=[girl("Sophie", "Grace")], surname="Morris")
    p, c, r = new_probe(
        "P07", "middle name used as given name (Sophie Grace -> Grace), no NHS + new address", fam
    )
    ch = canonical_child(
        c, nhs_number=None, given_name="Grace", middle_names=None, **refuge_fields(r, fam["mother"])
    )
    add(p, 2, "dwp", upd("dwp", "CB-P07", 1, ch))

    # P08 sex missing
    fam = make_family(kids=[girl("Poppy")], surname="Green")
    p, c, r = new_probe("P08", "sex missing (null), no NHS + new address", fam)
    ch = canonical_child(c, nhs_number=None, sex=None, **refuge_fields(r, fam["mother"]))
    add(p, 2, "school", upd("school", "SCH-P08", 1, ch))

    # P09 1 January for DOB
    fam = make_family(kids=[girl("Freya", dob=date(2011, 8, 22))], surname="Harris")
    p, c, r = new_probe(
        "P09",
        "date of birth recorded as 1 January (2011-08-22 -> 2011-01-01), no NHS + new address",
        fam,
    )
    ch = canonical_child(
        c, nhs_number=None, date_of_birth="2011-01-01", **refuge_fields(r, fam["mother"])
    )
    add(p, 2, "dwp", upd("dwp", "CB-P09", 1, ch))

    # P10 given and family names swapped
    fam = make_family(kids=[girl("Maryam")], surname="Hussain")
    p, c, r = new_probe("P10", "given and family names swapped, no NHS + new address", fam)
    ch = canonical_child(
        c,
        nhs_number=None,
        given_name=c["family"],
        family_name=c["given"],
        **refuge_fields(r, fam["mother"]),
    )
    add(p, 2, "la", upd("la", "LA-P10", 1, ch))

    # P11 nickname
    fam = make_family(kids=[girl("Katherine")], surname="Wright")
    p, c, r = new_probe("P11", "nickname (Katherine -> Katie), no NHS + new address", fam)
    ch = canonical_child(c, nhs_number=None, given_name="Katie", **refuge_fields(r, fam["mother"]))
    add(p, 2, "school", upd("school", "SCH-P11", 1, ch))

    # P12 sibling's NHS number by mistake
    fam = make_family(
        kids=[girl("Ruby", dob=date(2012, 4, 5)), ("Mason", None, "male", date(2015, 10, 2))],
        surname="Baker",
    )
    p, c, r = new_probe(
        "P12", "her names/DOB but her open sibling's NHS number by mistake + refuge address", fam
    )
    sib = CHILDREN[fam["kids"][1]]
    p["sibling"] = fam["kids"][1]
    ch = canonical_child(c, nhs_number=sib["nhs"], **refuge_fields(r, f"Kerry {NEWNAMES[4]}"))
    add(p, 2, "dwp", upd("dwp", "CB-P12", 1, ch))

    # P13 the same update twice (no NHS, new surname)
    fam = make_family(kids=[girl("Evie")], surname="Clarke")
    p, c, r = new_probe(
        "P13", "same update sent twice back-to-back (no NHS, new surname, refuge)", fam
    )
    ch = canonical_child(
        c, nhs_number=None, family_name=NEWNAMES[5], **refuge_fields(r, f"Lisa {NEWNAMES[5]}")
    )
    u = upd("la", "LA-P13", 1, ch)
    add(p, 2, "la", u, "probe copy 1")
    add(p, 2, "la", json.loads(json.dumps(u)), "probe copy 2")

    # P14 older source_version after a newer one (NHS present)
    fam = make_family(kids=[girl("Hannah")], surname="Jackson")
    p, c, r = new_probe(
        "P14", "v5 with refuge address A, then older v3 with address B (NHS present)", fam
    )
    ch5 = canonical_child(c, **refuge_fields(r, fam["mother"]))
    add(p, 2, "dwp", upd("dwp", "CB-P14", 5, ch5), "probe v5 (newer)")
    r_old = refuge_profile("P14old", i, other_la(fam["la"]))
    i += 1
    p["refuge_old"] = r_old
    ch3 = canonical_child(c, **refuge_fields(r_old, fam["mother"]))
    add(p, 3, "dwp", upd("dwp", "CB-P14", 3, ch3), "probe v3 (older, sent after)")

    # P15 update about her open sibling moving into the refuge address
    fam = make_family(
        kids=[girl("Amira", dob=date(2011, 1, 20)), girl("Aisha", dob=date(2014, 7, 11))],
        surname="Begum",
    )
    p, c, r = new_probe(
        "P15",
        "establish refuge for her (NHS), then her OPEN sibling sent at the refuge address",
        fam,
    )
    sib = CHILDREN[fam["kids"][1]]
    p["sibling"] = fam["kids"][1]
    add(
        p,
        2,
        "la",
        upd("la", "LA-P15", 1, canonical_child(c, **refuge_fields(r, fam["mother"]))),
        "establish",
    )
    add(
        p,
        3,
        "dwp",
        upd(
            "dwp",
            "CB-P15-SIB",
            1,
            canonical_child(sib, **refuge_fields(r, fam["mother"], ("address", "carers"))),
        ),
        "attack: sibling moves in",
    )

    # P16 unrelated open child carrying the refuge's phone as a carer's phone
    fam = make_family(kids=[girl("Ellie")], surname="Kelly")
    p, c, r = new_probe(
        "P16",
        "establish refuge for her (NHS), then UNRELATED open child with refuge carer phone",
        fam,
    )
    add(
        p,
        2,
        "la",
        upd("la", "LA-P16", 1, canonical_child(c, **refuge_fields(r, fam["mother"]))),
        "establish",
    )
    ufam = make_family(
        kids=[("Jacob", None, "male", date(2010, 5, 19))], surname="Nowak", la=rng.choice(LA_CODES)
    )
    uc = CHILDREN[ufam["kids"][0]]
    p["unrelated"] = ufam["kids"][0]
    add(
        p,
        3,
        "school",
        upd(
            "school",
            "SCH-P16-UNREL",
            1,
            canonical_child(
                uc,
                carers=[{"name": "Refuge keyworker", "relationship": "other", "phone": r["phone"]}],
            ),
        ),
        "attack: unrelated child with refuge phone",
    )

    # P17 brand-new child registered at the refuge address
    fam = make_family(kids=[girl("Zara")], surname="Ahmed")
    p, c, r = new_probe(
        "P17",
        "establish refuge for her (NHS), then a BRAND-NEW child (no match) at the refuge address",
        fam,
    )
    add(
        p,
        2,
        "la",
        upd("la", "LA-P17", 1, canonical_child(c, **refuge_fields(r, fam["mother"]))),
        "establish",
    )
    newkid = {
        "nhs_number": new_nhs(),
        "upn": None,
        "given_name": "Bronwen",
        "middle_names": None,
        "family_name": "Quarrington",
        "former_family_names": [],
        "date_of_birth": "2019-09-09",
        "sex": "female",
        **refuge_fields(r, "Nia Quarrington", ("address", "carers")),
    }
    p["newkid_nhs"] = newkid["nhs_number"]
    add(p, 3, "dwp", upd("dwp", "CB-P17-NEWKID", 1, newkid), "attack: new child at refuge")

    # P18 double-barrelled surname
    fam = make_family(kids=[girl("Florence")], surname="Thompson")
    p, c, r = new_probe(
        "P18", "double-barrelled surname (Thompson -> Thompson-Ashworth), no NHS + new address", fam
    )
    ch = canonical_child(
        c, nhs_number=None, family_name=f"Thompson-{NEWNAMES[6]}", **refuge_fields(r, fam["mother"])
    )
    add(p, 2, "dwp", upd("dwp", "CB-P18", 1, ch))

    # P19 family name only
    fam = make_family(kids=[girl("Willow")], surname="Harrison")
    p, c, r = new_probe("P19", "given name missing (family name only), no NHS + new address", fam)
    ch = canonical_child(
        c, nhs_number=None, given_name=None, middle_names=None, **refuge_fields(r, fam["mother"])
    )
    add(p, 2, "school", upd("school", "SCH-P19", 1, ch))

    # P20 given name only
    fam = make_family(kids=[girl("Isla")], surname="Martin")
    p, c, r = new_probe("P20", "family name missing (given name only), no NHS + new address", fam)
    ch = canonical_child(c, nhs_number=None, family_name=None, **refuge_fields(r, fam["mother"]))
    add(p, 2, "la", upd("la", "LA-P20", 1, ch))

    # P21 soundex-equal surname
    fam = make_family(kids=[girl("Lily")], surname="Smith")
    p, c, r = new_probe("P21", "Soundex-equal surname (Smith -> Smyth), no NHS + new address", fam)
    ch = canonical_child(c, nhs_number=None, family_name="Smyth", **refuge_fields(r, fam["mother"]))
    add(p, 2, "dwp", upd("dwp", "CB-P21", 1, ch))

    # P22 twin: given name missing, the open twin is an equally good candidate
    fam = make_family(
        kids=[girl("Amelia", dob=date(2016, 12, 3)), girl("Olivia", dob=date(2016, 12, 3))],
        surname="Wilson",
    )
    p, c, r = new_probe(
        "P22", "shielded twin: given name missing, no NHS; the OPEN twin matches equally", fam
    )
    p["sibling"] = fam["kids"][1]
    ch = canonical_child(
        c, nhs_number=None, given_name=None, middle_names=None, **refuge_fields(r, fam["mother"])
    )
    add(p, 2, "school", upd("school", "SCH-P22", 1, ch))

    # P23 namesake with same DOB in another LA
    nk = girl("Olivia", dob=date(2015, 3, 4))
    fam = make_family(kids=[nk], surname="Brown")
    p, c, r = new_probe(
        "P23", "open namesake (same names+DOB+sex) in another LA; no NHS + refuge address", fam
    )
    nfam = make_family(
        kids=[("Olivia", None, "female", date(2015, 3, 4))], surname="Brown", la=other_la(fam["la"])
    )
    p["namesake"] = nfam["kids"][0]
    ch = canonical_child(c, nhs_number=None, middle_names=None, **refuge_fields(r, fam["mother"]))
    add(p, 2, "dwp", upd("dwp", "CB-P23", 1, ch))

    # P24 invalid NHS check digit
    fam = make_family(kids=[girl("Jessica")], surname="Patel")
    p, c, r = new_probe("P24", "her NHS number with a wrong check digit + refuge address", fam)
    ch = canonical_child(c, nhs_number=bad_check(c["nhs"]), **refuge_fields(r, fam["mother"]))
    add(p, 2, "dwp", upd("dwp", "CB-P24", 1, ch))

    # P25 legit: same LA, only the carer phone changes, NHS present
    fam = make_family(kids=[girl("Grace")], surname="Lewis")
    p, c, r = new_probe(
        "P25",
        "legitimate: NHS + exact details, new address in SAME LA + new phone",
        fam,
        same_la_refuge=True,
    )
    add(p, 2, "la", upd("la", "LA-P25", 1, canonical_child(c, **refuge_fields(r, fam["mother"]))))

    # P26 legit move to refuge in other LA, exact details with NHS
    fam = make_family(kids=[girl("Mia")], surname="Edwards")
    p, c, r = new_probe(
        "P26", "legitimate: NHS + exact details, refuge in ANOTHER LA (moved_in/out routing)", fam
    )
    add(p, 2, "la", upd("la", "LA-P26", 1, canonical_child(c, **refuge_fields(r, fam["mother"]))))

    # P27 new surname, former surname recorded, no NHS
    fam = make_family(kids=[girl("Rosie")], surname="Allen")
    p, c, r = new_probe("P27", "new surname with former_family_names=[old], no NHS + refuge", fam)
    ch = canonical_child(
        c,
        nhs_number=None,
        family_name=NEWNAMES[7],
        former_family_names=[c["family"]],
        **refuge_fields(r, f"Emma {NEWNAMES[7]}"),
    )
    add(p, 2, "dwp", upd("dwp", "CB-P27", 1, ch))

    # P28 school-only update: new UPN + refuge school, no NHS, no address
    fam = make_family(kids=[girl("Emily")], surname="Ward")
    p, c, r = new_probe(
        "P28", "school transfer: new UPN + refuge school only, no NHS, no address", fam
    )
    ch = canonical_child(
        c,
        nhs_number=None,
        upn="Z330299910001",
        address=None,
        carers=[],
        gp_practice=None,
        services=[],
        education_setting=r["school"],
    )
    add(p, 2, "school", upd("school", "SCH-P28", 1, ch))

    # P29 GP-only update with a surname typo, no NHS
    fam = make_family(kids=[girl("Sophia")], surname="Hill")
    p, c, r = new_probe(
        "P29", "surname typo (Hill -> Hall-like 'Hil'), new GP only, no NHS, no address", fam
    )
    ch = canonical_child(
        c,
        nhs_number=None,
        family_name="Hil",
        address=None,
        carers=[],
        education_setting=None,
        services=[],
        gp_practice=r["gp"],
    )
    add(p, 2, "la", upd("la", "LA-P29", 1, ch))

    # P30 upper-case names, sex 'unknown', no NHS
    fam = make_family(kids=[girl("Zoe")], surname="Okafor")
    p, c, r = new_probe("P30", "names in UPPER CASE, sex 'unknown', no NHS + refuge", fam)
    ch = canonical_child(
        c,
        nhs_number=None,
        given_name="ZOE",
        family_name="OKAFOR",
        sex="unknown",
        **refuge_fields(r, fam["mother"]),
    )
    add(p, 2, "dwp", upd("dwp", "CB-P30", 1, ch))

    # P31 twin typo towards the open twin (name halfway), no NHS
    fam = make_family(
        kids=[girl("Ava", dob=date(2017, 5, 8)), girl("Eva", dob=date(2017, 5, 8))],
        surname="Mensah",
    )
    p, c, r = new_probe(
        "P31", "shielded twin Ava, open twin Eva; update given 'Ave', no NHS + refuge", fam
    )
    p["sibling"] = fam["kids"][1]
    ch = canonical_child(c, nhs_number=None, given_name="Ave", **refuge_fields(r, fam["mother"]))
    add(p, 2, "la", upd("la", "LA-P31", 1, ch))


CONTROLS = []  # dicts: id, kind, child idx or None, updates, expect


def build_controls():
    openkids = [
        k for k in range(len(CHILDREN)) if FAMILIES[CHILDREN[k]["fam"]].get("probe") is None
    ]
    picks = rng.sample(openkids, 8)

    def ctl(cid, kind, source, u, expect, child=None):
        CONTROLS.append(
            {
                "id": cid,
                "kind": kind,
                "child": child,
                "source": source,
                "update": u,
                "expect": expect,
            }
        )

    c = CHILDREN[picks[0]]
    fam = FAMILIES[c["fam"]]
    ctl(
        "C01",
        "open child moves within LA, NHS present",
        "dwp",
        upd(
            "dwp",
            "CB-C01",
            1,
            canonical_child(
                c,
                address={
                    "lines": ["77 Control Street"],
                    "town": LAS[fam["la"]][0],
                    "postcode": postcode(fam["la"]),
                    "la": fam["la"],
                },
            ),
        ),
        "link",
        picks[0],
    )
    c = CHILDREN[picks[1]]
    fam = FAMILIES[c["fam"]]
    nla = other_la(fam["la"])
    ctl(
        "C02",
        f"open child moves {fam['la']} -> {nla}, NHS present",
        "la",
        upd(
            "la",
            "LA-C02",
            1,
            canonical_child(
                c,
                address={
                    "lines": ["5 Control Avenue"],
                    "town": LAS[nla][0],
                    "postcode": postcode(nla),
                    "la": nla,
                },
            ),
        ),
        "link",
        picks[1],
    )
    ctl(
        "C03",
        "brand-new open child",
        "dwp",
        upd(
            "dwp",
            "CB-C03",
            1,
            {
                "nhs_number": new_nhs(),
                "given_name": "Perpetua",
                "family_name": "Ironside",
                "date_of_birth": "2020-02-02",
                "sex": "female",
                "address": {
                    "lines": ["9 Control Row"],
                    "town": "Leeds",
                    "postcode": postcode("383"),
                    "la": "383",
                },
            },
        ),
        "create",
    )
    c = CHILDREN[picks[2]]
    ctl(
        "C04",
        "open child exact details, no NHS, new carer phone",
        "school",
        upd(
            "school",
            "SCH-C04",
            1,
            canonical_child(
                c,
                nhs_number=None,
                carers=[{"name": "Carer", "relationship": "mother", "phone": "0300 000 0004"}],
            ),
        ),
        "link",
        picks[2],
    )
    c = CHILDREN[picks[3]]
    ctl(
        "C05",
        "open child, new GP, NHS present",
        "la",
        upd(
            "la",
            "LA-C05",
            1,
            canonical_child(c, gp_practice={"ods_code": "X00005", "name": "Control GP"}),
        ),
        "link",
        picks[3],
    )
    c = CHILDREN[picks[4]]
    ctl(
        "C06",
        "open child, invalid NHS check digit",
        "dwp",
        upd("dwp", "CB-C06", 1, canonical_child(c, nhs_number=bad_check(c["nhs"]))),
        "dlq",
        picks[4],
    )
    c = CHILDREN[picks[5]]
    u = upd("dwp", "CB-C07", 1, canonical_child(c))
    u["child"]["favourite_colour"] = "blue"
    ctl("C07", "unknown field in child", "dwp", u, "dlq", picks[5])
    c = CHILDREN[picks[6]]
    u = upd("school", "SCH-C08", 1, canonical_child(c))
    u["child"]["date_of_birth"] = "2015-02-30"
    ctl("C08", "invalid date of birth", "school", u, "dlq", picks[6])


# ---------------------------------------------------------------- scanning
ID_KEYS = {"event_id", "child_id", "id", "version", "occurred_at", "received_at"}


def norm(s):
    return re.sub(r"[\s\-]", "", str(s)).upper()


def strings(o, skip_ids=True):
    out = []
    if isinstance(o, dict):
        for k, v in o.items():
            if skip_ids and k in ID_KEYS:
                continue
            out.extend(strings(v, skip_ids))
    elif isinstance(o, list):
        for v in o:
            out.extend(strings(v, skip_ids))
    elif o is not None:
        out.append(str(o))
    return out


def token_hits(obj, token_sets):
    """token_sets: {owner: {tokname: value}} -> list of (owner, tokname, value)"""
    hay = norm(" ".join(strings(obj)))
    hits = []
    for owner, toks in token_sets.items():
        for tn, tv in toks.items():
            if tv and norm(tv) in hay:
                hits.append((owner, tn, tv))
    return hits


def parse_jsonl(text, what):
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            CONTRACT.append(
                {"cmd": what, "problem": f"stdout line {n} is not JSON", "line": line[:300]}
            )
    return rows


# ---------------------------------------------------------------- main flow
RUN_PROC = None


def start_run():
    global RUN_PROC
    f_out = open(f"{OUT}/hub_run.stdout", "w")
    f_err = open(f"{OUT}/hub_run.stderr", "w")
    RUN_PROC = subprocess.Popen(
        [HUB, "run"], env=ENV, stdout=f_out, stderr=f_err, cwd="/tmp", start_new_session=True
    )
    log(f"hub run started pid={RUN_PROC.pid}")


def stop_run():
    global RUN_PROC
    if RUN_PROC and RUN_PROC.poll() is None:
        RUN_PROC.send_signal(signal.SIGTERM)
        try:
            rc = RUN_PROC.wait(timeout=90)
            log(f"hub run stopped by SIGTERM rc={rc}")
            if rc not in (0, -15, 143):
                CONTRACT.append(
                    {"cmd": "hub run (SIGTERM)", "rc": rc, "problem": "non-zero exit after SIGTERM"}
                )
        except subprocess.TimeoutExpired:
            CONTRACT.append(
                {
                    "cmd": "hub run (SIGTERM)",
                    "problem": "did not stop within 90s of SIGTERM; killed",
                }
            )
            os.killpg(RUN_PROC.pid, signal.SIGKILL)
            RUN_PROC.wait()
    RUN_PROC = None


def cleanup():
    stop_run()
    p = sh(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            f'DROP DATABASE IF EXISTS "{DBNAME}" WITH (FORCE)',
        ]
    )
    log(f"drop database {DBNAME}: rc={p.returncode} {p.stderr.strip()[:200]}")
    p = sh(["rabbitmqctl", "delete_vhost", VHOST])
    log(f"delete vhost {VHOST}: rc={p.returncode}")


def publish(source, updates, name):
    path = f"{OUT}/{name}.jsonl"
    with open(path, "w") as f:
        for u in updates:
            f.write(json.dumps(u) + "\n")
    r = hub("publish", "--source", source, "--format", "jsonl", path)
    log(f"publish {name} ({len(updates)} lines): rc={r['rc']} {r['out'].strip()[-300:]}")
    w = hub("wait", "--timeout", "600")
    log(f"wait: rc={w['rc']} ({w['secs']}s)")
    if w["rc"] != 0:
        log("WARNING: hub wait did not return 0")
    return r


def consume_all(tag):
    res = {}
    for la in LA_CODES:
        r = hub(
            "notifications",
            "consume",
            "--council",
            la,
            "--max",
            "100000",
            "--idle",
            "3",
            quiet=True,
            timeout=600,
        )
        rows = parse_jsonl(r["out"], f"hub notifications consume --council {la}")
        with open(f"{OUT}/notifications_{tag}_{la}.jsonl", "w") as f:
            f.write(r["out"])
        res[la] = rows
    log(f"notifications {tag}: " + ", ".join(f"{la}:{len(v)}" for la, v in res.items()))
    return res


def export(tag, protected=False):
    args = ["export"] + (
        ["--include-protected", "--by", "probe", "--reason", "probe analysis"] if protected else []
    )
    r = hub(*args, quiet=True)
    with open(f"{OUT}/export_{tag}.jsonl", "w") as f:
        f.write(r["out"])
    return parse_jsonl(r["out"], "hub " + " ".join(args))


def main():
    build_population()
    build_probes()
    for p in PROBES:
        FAMILIES[p["family"]]["probe"] = p["id"]
        if "namesake" in p:
            FAMILIES[CHILDREN[p["namesake"]]["fam"]]["probe"] = p["id"] + "-namesake"
        if "unrelated" in p:
            FAMILIES[CHILDREN[p["unrelated"]]["fam"]]["probe"] = p["id"] + "-unrelated"
    build_controls()
    log(
        f"tag={TAG} db={DBNAME} vhost={VHOST} children={len(CHILDREN)} "
        f"families={len(FAMILIES)} probes={len(PROBES)}"
    )

    p = sh(["rabbitmqctl", "add_vhost", VHOST])
    if p.returncode != 0:
        raise SystemExit(f"add_vhost failed: {p.stderr}")
    sh(["rabbitmqctl", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"])

    r = hub("setup")
    if r["rc"] != 0:
        raise SystemExit("hub setup failed: " + r["err"])
    hub("setup")  # idempotent
    for la in LA_CODES:
        hub("council", "add", la)
    start_run()
    time.sleep(3)

    # phase 1: pds population
    pds = [upd("pds", c["srid"], 1, canonical_child(c)) for c in CHILDREN]
    rng.shuffle(pds)
    publish("pds", pds, "phase1_pds")
    pre_notes = consume_all("phase1")
    exp1 = export("phase1")
    by_nhs = {}
    for row in exp1:
        n = row.get("child", {}).get("nhs_number")
        if n:
            by_nhs.setdefault(n, []).append(row["child_id"])
    by_demo = {}
    for row in exp1:
        ch = row.get("child", {})
        by_demo.setdefault(
            (ch.get("given_name"), ch.get("family_name"), ch.get("date_of_birth")), []
        ).append(row["child_id"])
    for c in CHILDREN:
        ids = by_nhs.get(c["nhs"]) or by_demo.get(
            (c["given"], c["family"], c["dob"].isoformat()), []
        )
        c["child_id"] = ids[0] if len(ids) == 1 else None
        if len(ids) != 1:
            log(
                f"population child {c['nhs']} {c['given']} {c['family']} "
                f"has {len(ids)} records after load"
            )
    rev1 = parse_jsonl(hub("review", "list", "--json")["out"], "review list")
    dlq1 = parse_jsonl(hub("dlq", "list", "--json")["out"], "dlq list")
    log(f"after load: records={len(exp1)} reviews={len(rev1)} dlq={len(dlq1)}")

    # shield
    shield_out = {}
    for p in PROBES:
        c = CHILDREN[p["target"]]
        if not c["child_id"]:
            p["skip"] = "target has no unique record after load"
            continue
        r = hub(
            "shield",
            c["child_id"],
            "--authority",
            p["authority"],
            "--by",
            "probe",
            "--reason",
            "test",
        )
        shield_out[p["id"]] = (r["rc"], r["out"].strip()[:500], r["err"].strip()[:300])
        if r["rc"] != 0:
            p["skip"] = f"shield failed rc={r['rc']}: {r['err'].strip()[:200]}"
    hub("wait", "--timeout", "600")
    shield_notes = consume_all("shield")
    exp_pre = export("preprobe")
    pre_ids = {row["child_id"] for row in exp_pre}
    shielded_pre = {
        row["child_id"]: row.get("shielding_authority") for row in exp_pre if row.get("shielded")
    }
    log(f"shielded records before probes: {len(shielded_pre)}")

    # phase 2 and 3: probes + controls grouped by source (order within a source file preserved)
    for phase in (2, 3):
        groups = {}
        for p in PROBES:
            if p.get("skip"):
                continue
            for u in p["updates"]:
                if u["phase"] == phase:
                    groups.setdefault(u["source"], []).append(u["update"])
        if phase == 2:
            for c in CONTROLS:
                groups.setdefault(c["source"], []).append(c["update"])
        for src in ("la", "dwp", "school"):
            if src in groups:
                publish(src, groups[src], f"phase{phase}_{src}")
        if phase == 2:
            # plus one unreadable line (must become a dead letter with null source_record_id)
            path = f"{OUT}/phase2_garbage.jsonl"
            with open(path, "w") as f:
                f.write('{"source": "dwp", "source_record_id": "CB-GARBAGE", this is not json\n')
            r = hub("publish", "--source", "dwp", "--format", "jsonl", path)
            log(
                f"publish garbage: rc={r['rc']} out={r['out'].strip()[:300]} "
                f"err={r['err'].strip()[:300]}"
            )
            hub("wait", "--timeout", "600")
    post_notes = consume_all("probes")

    exp = export("final")
    expP = export("final_protected", protected=True)
    revr = hub("review", "list", "--json")
    rev = parse_jsonl(revr["out"], "hub review list --json")
    with open(f"{OUT}/review.jsonl", "w") as f:
        f.write(revr["out"])
    dlqr = hub("dlq", "list", "--json")
    dlq = parse_jsonl(dlqr["out"], "hub dlq list --json")
    with open(f"{OUT}/dlq.jsonl", "w") as f:
        f.write(dlqr["out"])
    plain_rev = hub("review", "list")
    plain_dlq = hub("dlq", "list")
    with open(f"{OUT}/review_plain.txt", "w") as f:
        f.write(plain_rev["out"])
    with open(f"{OUT}/dlq_plain.txt", "w") as f:
        f.write(plain_dlq["out"])

    analyse(
        exp,
        expP,
        rev,
        dlq,
        pre_ids,
        shielded_pre,
        {"shield": shield_notes, "probes": post_notes},
        pre_notes,
        shield_out,
        plain_rev["out"],
        plain_dlq["out"],
    )
    if os.environ.get("PROBE_ROUND2", "1") == "1":
        round2(pre_ids)
    contract_probes()


# ---------------------------------------------------------------- analysis
def shape_checks(exp, rev, dlq):
    for row in exp:
        miss = {"child_id", "version", "shielded", "shielding_authority", "sources", "child"} - set(
            row
        )
        if miss:
            CONTRACT.append(
                {
                    "cmd": "hub export",
                    "problem": f"export line missing keys {sorted(miss)}",
                    "line": json.dumps(row)[:300],
                }
            )
            break
    for row in rev:
        miss = {"id", "reason", "source", "source_record_id", "candidates", "received_at"} - set(
            row
        )
        if miss:
            CONTRACT.append(
                {
                    "cmd": "hub review list --json",
                    "problem": f"review line missing keys {sorted(miss)}",
                    "line": json.dumps(row)[:300],
                }
            )
            break
        for cnd in row.get("candidates") or []:
            if not {"child_id", "score"} <= set(cnd):
                CONTRACT.append(
                    {
                        "cmd": "hub review list --json",
                        "problem": "candidate without child_id/score",
                        "line": json.dumps(row)[:300],
                    }
                )
                break
    for row in dlq:
        miss = {"id", "reason", "source", "source_record_id", "error", "received_at"} - set(row)
        if miss:
            CONTRACT.append(
                {
                    "cmd": "hub dlq list --json",
                    "problem": f"dlq line missing keys {sorted(miss)}",
                    "line": json.dumps(row)[:300],
                }
            )
            break


PROTECTED = ("address", "carers", "education_setting", "gp_practice", "services")


def analyse(
    exp, expP, rev, dlq, pre_ids, shielded_pre, notes, pre_notes, shield_out, plain_rev, plain_dlq
):
    shape_checks(exp, rev, dlq)
    rec = {row["child_id"]: row for row in exp}
    recP = {row["child_id"]: row for row in expP}
    shielded = {
        cid: row.get("shielding_authority") for cid, row in rec.items() if row.get("shielded")
    }
    findings = {
        "leaks": [],
        "export_protected": [],
        "notification_leaks": [],
        "review_reveals": [],
        "dlq_reveals": [],
        "other": [],
    }
    # refuge token sets per probe
    tok = {pid: prof["tokens"] for pid, prof in REFUGE.items()}
    probe_by_id = {p["id"]: p for p in PROBES}

    def update_for_token(pid):
        p = probe_by_id[pid[:3]]
        ups = [
            u
            for u in p["updates"]
            if json.dumps(u["update"]).find(REFUGE[pid]["tokens"]["street"]) >= 0
        ]
        return ups

    # shielded set sanity
    for p in PROBES:
        cid = CHILDREN[p["target"]].get("child_id")
        p["child_id"] = cid
        if cid and cid not in shielded:
            findings["other"].append(f"{p['id']}: target {cid} is not shielded in the final export")

    # 1. leaks into non-shielded records
    for cid, row in rec.items():
        if row.get("shielded"):
            continue
        hits = token_hits(row.get("child", {}), tok)
        for owner, tn, tv in hits:
            findings["leaks"].append(
                {
                    "record": cid,
                    "new_record": cid not in pre_ids,
                    "probe": owner,
                    "token": tn,
                    "value": tv,
                    "record_sources": row.get("sources"),
                    "record_line": row,
                }
            )
    # 2. shielded records: no protected fields, no tokens
    for cid, row in rec.items():
        if not row.get("shielded"):
            continue
        present = [k for k in PROTECTED if k in (row.get("child") or {})]
        hits = token_hits(row, tok)
        if present or hits:
            findings["export_protected"].append(
                {"record": cid, "protected_keys_present": present, "tokens": hits, "line": row}
            )
    # also: any other shielded-child stored protected data (original address) in export of
    # shielded lines
    # 3. notifications
    note_summary = {}
    for phase, per_la in notes.items():
        for la, rows in per_la.items():
            for n in rows:
                ev = n.get("event")
                note_summary.setdefault((phase, la, ev), 0)
                note_summary[(phase, la, ev)] += 1
                cid = n.get("child_id")
                if cid in shielded and la != shielded[cid]:
                    findings["notification_leaks"].append(
                        {
                            "council": la,
                            "why": "notification about shielded child to non-authority",
                            "authority": shielded[cid],
                            "notification": n,
                        }
                    )
                for owner, tn, tv in token_hits(n, tok):
                    auth = probe_by_id[owner[:3]]["authority"]
                    if la != auth:
                        findings["notification_leaks"].append(
                            {
                                "council": la,
                                "why": f"carries {owner} refuge {tn}={tv}",
                                "authority": auth,
                                "notification": n,
                            }
                        )
                # shielded child's protected keys in body sent to authority: record (allowed)
    # original (pre-shield) protected tokens of shielded children, to check reviews
    orig_tok = {}
    for p in PROBES:
        fam = FAMILIES[p["family"]]
        orig_tok[p["id"] + "-orig"] = {
            "street_line": fam["address"]["lines"][0],
            "postcode": fam["address"]["postcode"],
            "carer_phone": fam["phone"],
            "gp_ods": fam["gp"]["ods_code"],
        }
    # 4. review lines reveal?
    for row in rev:
        hits = token_hits(row, tok)
        ohits = token_hits(row, orig_tok)
        if hits or ohits:
            findings["review_reveals"].append(
                {"review": row, "refuge_tokens": hits, "original_tokens": ohits}
            )
    for row in dlq:
        hits = token_hits(row, tok)
        if hits:
            findings["dlq_reveals"].append({"dlq": row, "refuge_tokens": hits})
    plain_rev_hits = token_hits({"t": plain_rev}, {**tok, **orig_tok})
    plain_dlq_hits = token_hits({"t": plain_dlq}, tok)

    # 5. per-update outcome
    src_index = {}
    for cid, row in rec.items():
        for s in row.get("sources") or []:
            src_index.setdefault((s.get("source"), s.get("source_record_id")), []).append(cid)
    rev_index = {}
    for row in rev:
        rev_index.setdefault((row.get("source"), row.get("source_record_id")), []).append(row)
    dlq_index = {}
    for row in dlq:
        dlq_index.setdefault((row.get("source"), row.get("source_record_id")), []).append(row)

    def child_label(cid):
        row = rec.get(cid)
        if not row:
            return f"{cid} (not in export)"
        ch = row.get("child", {})
        lab = (
            f"{str(cid)[:8]}… {ch.get('given_name')} {ch.get('family_name')} "
            f"{ch.get('date_of_birth')}"
        )
        lab += (
            f" [SHIELDED by {row.get('shielding_authority')}]" if row.get("shielded") else " [open]"
        )
        if cid not in pre_ids:
            lab += " [NEW]"
        return lab

    def outcome(source, srid):
        o = {
            "linked": src_index.get((source, srid), []),
            "reviews": rev_index.get((source, srid), []),
            "dlq": dlq_index.get((source, srid), []),
        }
        parts = []
        for cid in o["linked"]:
            parts.append(("created " if cid not in pre_ids else "linked to ") + child_label(cid))
        for rv in o["reviews"]:
            cands = ", ".join(
                f"{child_label(cn['child_id'])} score={cn.get('score')}"
                for cn in rv.get("candidates") or []
            )
            parts.append(f"review reason={rv.get('reason')} candidates=[{cands}]")
        for d in o["dlq"]:
            parts.append(f"dead-lettered reason={d.get('reason')} error={d.get('error')}")
        if not parts:
            parts.append("NOT FOUND in export sources / review / dlq")
        o["text"] = "; ".join(parts)
        return o

    rows = []
    for p in PROBES:
        tgt = p.get("child_id")
        if p.get("skip"):
            rows.append(
                {
                    "probe": p["id"],
                    "kind": p["kind"],
                    "role": "-",
                    "source": "-",
                    "outcome": p["skip"],
                    "verdict": "QUESTIONABLE",
                    "why": "could not run",
                }
            )
            continue
        seen = set()
        for u in p["updates"]:
            up = u["update"]
            key = (up["source"], up["source_record_id"])
            o = outcome(*key)
            leaks_here = [
                lk
                for lk in findings["leaks"]
                if lk["probe"][:3] == p["id"]
                and key
                in {
                    (s.get("source"), s.get("source_record_id"))
                    for s in (lk["record_sources"] or [])
                }
            ]
            nleaks = [
                lk
                for lk in findings["notification_leaks"]
                if lk["notification"].get("child_id") in ([tgt] + o["linked"])
                or lk["why"].find(p["id"]) >= 0
            ]
            verdict, why = judge(
                p, u, o, tgt, leaks_here, nleaks, shielded, pre_ids, recP, key in seen
            )
            seen.add(key)
            rows.append(
                {
                    "probe": p["id"],
                    "kind": p["kind"],
                    "role": u["role"],
                    "source": up["source"],
                    "srid": up["source_record_id"],
                    "version": up["source_version"],
                    "outcome": o["text"],
                    "verdict": verdict,
                    "why": why,
                }
            )
    ctl_rows = []
    for c in CONTROLS:
        up = c["update"]
        o = outcome(up["source"], up["source_record_id"])
        expected_cid = CHILDREN[c["child"]].get("child_id") if c["child"] is not None else None
        ok = {
            "link": expected_cid in o["linked"],
            "create": any(x not in pre_ids for x in o["linked"]),
            "dlq": bool(o["dlq"]),
        }[c["expect"]]
        ctl_rows.append(
            {
                "control": c["id"],
                "kind": c["kind"],
                "expect": c["expect"],
                "outcome": o["text"],
                "as_expected": ok,
            }
        )
    VERDICTS.extend(x["verdict"] for x in rows)
    # garbage line
    garbage = [d for d in dlq if d.get("source_record_id") in (None, "CB-GARBAGE")]

    # notifications: per council counts, and what the authority / refuge council got for P26 etc.
    report = {
        "tag": TAG,
        "db": DBNAME,
        "vhost": VHOST,
        "rows": rows,
        "controls": ctl_rows,
        "findings": findings,
        "notification_counts": {
            f"{k[0]}|{k[1]}|{k[2]}": v for k, v in sorted(note_summary.items())
        },
        "shield_out": shield_out,
        "garbage_dlq": garbage,
        "plain_review_hits": plain_rev_hits,
        "plain_dlq_hits": plain_dlq_hits,
        "contract": CONTRACT,
        "counts": {
            "records": len(rec),
            "shielded": len(shielded),
            "reviews": len(rev),
            "dlq": len(dlq),
            "new_records": len([c for c in rec if c not in pre_ids]),
        },
    }
    # notification detail for notifications about probe targets (post shield)
    tgt_notes = []
    tgt_ids = {p.get("child_id"): p["id"] for p in PROBES}
    for phase, per_la in notes.items():
        for la, nrows in per_la.items():
            for n in nrows:
                if n.get("child_id") in tgt_ids:
                    tgt_notes.append(
                        {
                            "phase": phase,
                            "council": la,
                            "probe": tgt_ids[n["child_id"]],
                            "event": n.get("event"),
                            "child_keys": sorted((n.get("child") or {}).keys()),
                        }
                    )
    report["target_notifications"] = tgt_notes
    with open(f"{OUT}/report.json", "w") as f:
        json.dump(report, f, indent=1, default=str)
    write_markdown(report)


def judge(p, u, o, tgt, leaks_here, nleaks, shielded, pre_ids, recP, dup):
    role = u["role"]
    if leaks_here:
        return "LEAK", "refuge data now in open record(s): " + ", ".join(
            sorted({f"{lk['record'][:8]}…:{lk['token']}" for lk in leaks_here})
        )
    if nleaks:
        return "LEAK", "notification to non-authority council: " + ", ".join(
            sorted({f"{lk['council']} ({lk['why']})" for lk in nleaks})
        )[:300]
    attack_open = role.startswith("attack")
    linked = o["linked"]
    if linked:
        cid = linked[0]
        if cid not in pre_ids:
            if attack_open:
                row = recP.get(cid, {})
                return (
                    "LEAK" if not row.get("shielded") else "SAFE",
                    "new record created " + ("open" if not row.get("shielded") else "shielded"),
                )
            return "LEAK", "update about a shielded child created a new record (duplicate identity)"
        if cid == tgt:
            # check version handling for P14
            if p["id"] == "P14":
                ch = recP.get(tgt, {}).get("child", {})
                pc = (ch.get("address") or {}).get("postcode")
                if pc == p["refuge_old"]["address"]["postcode"]:
                    return (
                        "QUESTIONABLE",
                        "older source_version v3 overwrote v5 "
                        "(protected record now holds address B)",
                    )
                return "SAFE", f"linked; stored postcode={pc} (v5's), older v3 not applied"
            why = "linked to her shielded record"
            if p["id"] == "P12":
                ch = recP.get(tgt, {}).get("child", {})
                why += (
                    f"; her record's nhs_number is now {ch.get('nhs_number')} "
                    f"(sibling's is {CHILDREN[p['sibling']]['nhs']})"
                )
                return "QUESTIONABLE", why
            if p["id"] == "P06":
                ch = recP.get(tgt, {}).get("child", {})
                why += (
                    f"; record now {ch.get('given_name')} {ch.get('family_name')} "
                    f"{ch.get('date_of_birth')} {ch.get('sex')} "
                    "(auto-accepted total demographic change on NHS number alone)"
                )
                return "QUESTIONABLE", why
            return "SAFE", why + (" (duplicate copy: no-op)" if dup else "")
        if cid in shielded:
            return "QUESTIONABLE", "linked to a DIFFERENT shielded record"
        if attack_open:
            return "SAFE", "linked to the open child it is about; no refuge token found in it"
        return "LEAK", "update about a shielded child linked to an OPEN record"
    if o["reviews"]:
        cands = {c["child_id"] for rv in o["reviews"] for c in rv.get("candidates") or []}
        n = len(o["reviews"])
        extra = f" ({n} review items for one source record)" if n > 1 else ""
        if attack_open:
            return "SAFE", f"held for review ({o['reviews'][0].get('reason')})" + extra
        if tgt in cands:
            return (
                ("QUESTIONABLE" if n > 1 else "SAFE"),
                f"held for review, her record among candidates ({o['reviews'][0].get('reason')})"
                + extra,
            )
        return (
            "QUESTIONABLE",
            "held for review but her shielded record is NOT among the candidates" + extra,
        )
    if o["dlq"]:
        if p["id"] == "P24":
            return "SAFE", "invalid NHS check digit dead-lettered"
        return "QUESTIONABLE", "valid update dead-lettered"
    if dup or role.startswith("probe v3"):
        return "SAFE", "no trace (no-op)"
    return "QUESTIONABLE", "no trace of the update anywhere (lost?)"


def write_markdown(r):
    L = []
    L.append(f"# shieldprobe run {r['tag']}\n")
    L.append(f"counts: {r['counts']}\n")
    L.append("## Probe updates\n")
    L.append("| probe | kind | role | source/srid/v | outcome | verdict | why |")
    L.append("|---|---|---|---|---|---|---|")
    for x in r["rows"]:
        L.append(
            f"| {x['probe']} | {x['kind']} | {x['role']} | "
            f"{x.get('source')}/{x.get('srid')}/v{x.get('version')} | "
            f"{x['outcome']} | {x['verdict']} | {x['why']} |"
        )
    L.append("\n## Controls\n")
    for x in r["controls"]:
        L.append(
            f"- {x['control']} {x['kind']} expect={x['expect']} ok={x['as_expected']}: "
            f"{x['outcome']}"
        )
    L.append("\n## Leaks into open records\n")
    for item in r["findings"]["leaks"]:
        L.append(
            f"- probe {item['probe']} token {item['token']}={item['value']} "
            f"in record {item['record']} "
            f"(new={item['new_record']})\n  "
            f"`{json.dumps(item['record_line'])}`"
        )
    L.append("\n## Shielded export lines with protected data\n")
    for item in r["findings"]["export_protected"]:
        L.append(f"- `{json.dumps(item)[:1500]}`")
    L.append("\n## Notification leaks\n")
    for item in r["findings"]["notification_leaks"]:
        L.append(
            f"- council {item['council']} (authority {item['authority']}): {item['why']}\n  "
            f"`{json.dumps(item['notification'])[:2000]}`"
        )
    L.append("\n## Review lines revealing protected data\n")
    for item in r["findings"]["review_reveals"]:
        L.append(
            f"- refuge={item['refuge_tokens']} original={item['original_tokens']}\n  "
            f"`{json.dumps(item['review'])[:1500]}`"
        )
    L.append(f"\nplain `hub review list` token hits: {r['plain_review_hits']}")
    L.append("\n## DLQ lines revealing refuge data\n")
    for item in r["findings"]["dlq_reveals"]:
        L.append(f"- {item['refuge_tokens']} `{json.dumps(item['dlq'])[:800]}`")
    L.append(f"\nplain `hub dlq list` token hits: {r['plain_dlq_hits']}")
    L.append(f"\ngarbage line dead letter: {r['garbage_dlq']}")
    L.append("\n## Other findings\n")
    for item in r["findings"]["other"]:
        L.append(f"- {item}")
    L.append("\n## Notifications about probe targets after shielding\n")
    for n in r["target_notifications"]:
        L.append(f"- {n}")
    L.append("\n## Notification counts (phase|council|event)\n")
    for k, v in r["notification_counts"].items():
        L.append(f"- {k}: {v}")
    L.append("\n## Shield command outputs\n")
    for k, v in r["shield_out"].items():
        L.append(f"- {k}: {v}")
    L.append("\n## Contract observations\n")
    for c in r["contract"]:
        L.append(f"- `{json.dumps(c)[:1500]}`")
    with open(f"{OUT}/report.md", "w") as f:
        f.write("\n".join(L) + "\n")
    log(f"report written: {OUT}/report.md")


def contract_probes():
    """A few error-path commands: exit codes and one-line errors."""
    some = next((p for p in PROBES if p.get("child_id")), None)
    hub(
        "shield",
        "00000000-0000-0000-0000-000000000000",
        "--authority",
        "330",
        "--by",
        "probe",
        "--reason",
        "x",
        expect=(1,),
    )
    hub(
        "shield",
        "no-such-child",
        "--authority",
        "330",
        "--by",
        "probe",
        "--reason",
        "x",
        expect=(1,),
    )
    if some:
        other = [la for la in LA_CODES if la != some["authority"]][0]
        r = hub(
            "unshield",
            some["child_id"],
            "--authority",
            other,
            "--by",
            "probe",
            "--reason",
            "x",
            expect=(1,),
        )
        log(f"unshield by other LA: rc={r['rc']} err={r['err'].strip()[:200]}")
    hub(
        "publish",
        "--source",
        "dwp",
        "--format",
        "jsonl",
        "/tmp/shieldprobe/does-not-exist.jsonl",
        expect=(1,),
    )
    hub(
        "publish",
        "--source",
        "dwp",
        "--format",
        "nosuchformat",
        f"{OUT}/phase2_garbage.jsonl",
        expect=(1, 2),
    )
    hub(
        "review",
        "resolve",
        "00000000-0000-0000-0000-000000000000",
        "--reject",
        "--by",
        "probe",
        expect=(1,),
    )
    hub("notifications", "consume", "--council", "999", "--max", "1", "--idle", "2", expect=(1,))
    hub("export", "--include-protected", expect=(1, 2))
    hub("nosuchcommand", expect=(2,))
    hub("dlq", "retry", "00000000-0000-0000-0000-000000000000", expect=(1,))
    # re-check final state of the shield after the unshield attempt
    if some:
        rows = parse_jsonl(hub("export", quiet=True)["out"], "hub export")
        row = next((x for x in rows if x["child_id"] == some["child_id"]), None)
        log(
            f"after unshield-by-other attempt: shielded={row and row.get('shielded')} "
            f"authority={row and row.get('shielding_authority')}"
        )
    with open(f"{OUT}/contract.json", "w") as f:
        json.dump(CONTRACT, f, indent=1)


# ================================================================ round 2
R2 = {"actions": [], "searches": [], "leaks": [], "notification_leaks": [], "export_protected": []}


def r2_record(action, detail, verdict="", why=""):
    R2["actions"].append({"action": action, "detail": detail, "verdict": verdict, "why": why})
    VERDICTS.append(verdict)
    log(f"R2 {action}: {verdict} {why} | {str(detail)[:300]}")


def round2(pre_ids):
    pb = {p["id"]: p for p in PROBES}

    def tgt(pid):
        return pb[pid].get("child_id")

    ctl = {c["id"]: c for c in CONTROLS}
    used = {p["target"] for p in PROBES} | {
        pb[x][k] for x in pb for k in ("sibling", "namesake", "unrelated") if k in pb[x]
    }
    used |= {c["child"] for c in CONTROLS if c["child"] is not None}
    free = [
        k
        for k in range(len(CHILDREN))
        if k not in used
        and CHILDREN[k].get("child_id")
        and FAMILIES[CHILDREN[k]["fam"]].get("probe") is None
    ]
    picks = rng.sample(free, 6)
    alt_tokens = {}

    # profiles for new refuge addresses used in round 2
    p26b = refuge_profile("P26b", 32, other_la(pb["P26"]["authority"]))
    p32 = refuge_profile("P25x", 33, pb["P25"]["authority"])
    r26, r25, r17, r16 = (
        pb["P26"]["refuge"],
        pb["P25"]["refuge"],
        pb["P17"]["refuge"],
        pb["P16"]["refuge"],
    )
    c26 = CHILDREN[pb["P26"]["target"]]
    c25 = CHILDREN[pb["P25"]["target"]]
    R2["updates"] = {}

    def keep(name, u):
        R2["updates"][name] = u
        return u

    # --- phase 4a
    la_u, dwp_u, sch_u = [], [], []
    # A1: source-record-id hijack: LA-C02 (linked to an open child) now carries shielded P26
    # identity + new refuge
    la_u.append(
        keep(
            "A1",
            upd(
                "la",
                "LA-C02",
                2,
                canonical_child(c26, **refuge_fields(p26b, FAMILIES[c26["fam"]]["mother"])),
            ),
        )
    )
    # A1b: LA-C05 (open child) v2 keeps the open child's identity but moves it into P26's refuge
    j = CHILDREN[ctl["C05"]["child"]]
    la_u.append(
        keep(
            "A1b",
            upd(
                "la",
                "LA-C05",
                2,
                canonical_child(j, **refuge_fields(r26, "Joanne Johnson", ("address",))),
            ),
        )
    )
    # A2: unrelated open child moves next door to P25's refuge (same street + postcode,
    # different house)
    k = CHILDREN[picks[0]]
    nd = dict(r25["address"])
    nd["lines"] = [f"7 {r25['tokens']['street']}"]
    dwp_u.append(keep("A2", upd("dwp", "CB-A2", 1, canonical_child(k, address=nd))))
    # A3: brand-new child at P17's refuge, formatting changed (upper case, postcode without space)
    a3 = dict(r17["address"])
    a3["lines"] = [x.upper() for x in a3["lines"]]
    a3["postcode"] = a3["postcode"].replace(" ", "")
    dwp_u.append(
        keep(
            "A3",
            upd(
                "dwp",
                "CB-A3",
                1,
                {
                    "nhs_number": new_nhs(),
                    "given_name": "Morwenna",
                    "family_name": "Treharne",
                    "date_of_birth": "2018-04-04",
                    "sex": "female",
                    "address": a3,
                },
            ),
        )
    )
    # A4: unrelated open child with P16's refuge phone in international format
    k = CHILDREN[picks[1]]
    intl = "+44" + r16["phone"].replace(" ", "")[1:]
    alt_tokens["P16-intl"] = {"carer_phone_intl": intl}
    sch_u.append(
        keep(
            "A4",
            upd(
                "school",
                "SCH-A4",
                1,
                canonical_child(
                    k, carers=[{"name": "Key worker", "relationship": "other", "phone": intl}]
                ),
            ),
        )
    )
    # A5: unrelated open child with P16's refuge service phone as a service contact
    k = CHILDREN[picks[2]]
    la_u.append(
        keep(
            "A5",
            upd(
                "la",
                "LA-A5",
                1,
                canonical_child(
                    k, services=[{"name": "Family support", "contact": r16["svc_phone"]}]
                ),
            ),
        )
    )
    # A6: unrelated open child registered at P26's refuge GP practice
    k = CHILDREN[picks[3]]
    la_u.append(keep("A6", upd("la", "LA-A6", 1, canonical_child(k, gp_practice=r26["gp"]))))
    # A7a: a brand-new open child at a fresh address X (before anyone is shielded there)
    dwp_u.append(
        keep(
            "A7a",
            upd(
                "dwp",
                "CB-A7-NEW",
                1,
                {
                    "nhs_number": new_nhs(),
                    "given_name": "Tegan",
                    "family_name": "Polglase",
                    "date_of_birth": "2017-07-07",
                    "sex": "female",
                    "address": p32["address"],
                    "carers": [
                        {
                            "name": "Lowenna Polglase",
                            "relationship": "mother",
                            "phone": "0300 111 2222",
                        }
                    ],
                },
            ),
        )
    )
    # A8: the pending CB-P02 source record comes back with her NHS number (v2)
    c02 = CHILDREN[pb["P02"]["target"]]
    dwp_u.append(
        keep(
            "A8",
            upd(
                "dwp",
                "CB-P02",
                2,
                canonical_child(
                    c02,
                    family_name="Ashworth",
                    **refuge_fields(pb["P02"]["refuge"], "Sarah Ashworth"),
                ),
            ),
        )
    )
    # A9: unrelated open child in P26's refuge school
    k = CHILDREN[picks[4]]
    sch_u.append(
        keep("A9", upd("school", "SCH-A9", 1, canonical_child(k, education_setting=r26["school"])))
    )
    # A10: P01 (refuge already linked) again, no NHS + surname typo + another fresh address
    # -> review; used for `review show`
    p01c = refuge_profile("P01c", 34, other_la(pb["P01"]["authority"]))
    c01 = CHILDREN[pb["P01"]["target"]]
    dwp_u.append(
        keep(
            "A10",
            upd(
                "dwp",
                "CB-A10",
                1,
                canonical_child(
                    c01,
                    nhs_number=None,
                    family_name="Fairbrothers",
                    **refuge_fields(p01c, "Anna Fairbrother"),
                ),
            ),
        )
    )
    publish("la", la_u, "phase4_la")
    publish("dwp", dwp_u, "phase4_dwp")
    publish("school", sch_u, "phase4_school")
    # --- phase 4b: shielded P25 moves (NHS, exact) into address X where an open record now lives
    publish(
        "la",
        [
            keep(
                "A7b",
                upd(
                    "la",
                    "LA-P25",
                    2,
                    canonical_child(c25, **refuge_fields(p32, FAMILIES[c25["fam"]]["mother"])),
                ),
            )
        ],
        "phase4b_la",
    )
    notes4 = consume_all("round2_updates")

    rev = parse_jsonl(hub("review", "list", "--json")["out"], "review list")
    rv_by = {}
    for r in rev:
        rv_by.setdefault((r["source"], r["source_record_id"]), []).append(r)

    # --- `hub review show` on reviews whose candidates include a shielded record
    expP4 = {r["child_id"]: r for r in export("round2_pre_show_protected", protected=True)}

    def stored_tokens(cid):
        ch = (expP4.get(cid) or {}).get("child", {})
        t = {}
        a = ch.get("address") or {}
        for n, ln in enumerate(a.get("lines") or []):
            t[f"address_line{n}"] = ln
        t["postcode"] = a.get("postcode")
        for n, c in enumerate(ch.get("carers") or []):
            t[f"carer_phone{n}"] = c.get("phone")
        es = ch.get("education_setting") or {}
        t["school_urn"], t["school_name"] = es.get("urn"), es.get("name")
        gp = ch.get("gp_practice") or {}
        t["gp_ods"], t["gp_name"] = gp.get("ods_code"), gp.get("name")
        for n, sv in enumerate(ch.get("services") or []):
            t[f"service_contact{n}"] = sv.get("contact")
        return {k: v for k, v in t.items() if v and not re.fullmatch(r"Flat \d+", str(v))}

    R2["review_show"] = []
    for key in [
        ("la", "LA-C02"),
        ("dwp", "CB-A10"),
        ("dwp", "CB-P23"),
        ("dwp", "CB-P12"),
        ("dwp", "CB-P15-SIB"),
    ]:
        for item in rv_by.get(key, [])[:1]:
            shc = [
                c["child_id"]
                for c in item.get("candidates") or []
                if (expP4.get(c["child_id"]) or {}).get("shielded")
            ]
            upd_json = json.dumps(
                R2["updates"].get({"LA-C02": "A1", "CB-A10": "A10"}.get(key[1], ""), {})
            )
            for cid0 in shc or [None]:
                auth = (expP4.get(cid0) or {}).get("shielding_authority") if cid0 else None
                stok = stored_tokens(cid0) if cid0 else {}
                # tokens stored in her record that the incoming update does not itself carry
                for p in PROBES:
                    for u in p["updates"]:
                        if (u["update"]["source"], u["update"]["source_record_id"]) == key:
                            upd_json = json.dumps(u["update"])
                stok = {k: v for k, v in stok.items() if norm(v) not in norm(upd_json)}
                variants = [("no authority", [])]
                if auth:
                    wrong_la = [x for x in LA_CODES if x != auth][0]
                    variants += [
                        (f"wrong authority {wrong_la}", ["--authority", wrong_la]),
                        (f"own authority {auth}", ["--authority", auth]),
                    ]
                for vname, extra in variants:
                    r = hub("review", "show", item["id"], *extra, expect=(0, 1))
                    hits = token_hits({"t": r["out"]}, {"stored": stok}) if stok else []
                    upd_hits = token_hits(
                        {"t": r["out"]}, {pid: prof["tokens"] for pid, prof in REFUGE.items()}
                    )
                    R2["review_show"].append(
                        {
                            "key": key,
                            "review": item["id"],
                            "reason": item.get("reason"),
                            "shielded_candidate": cid0,
                            "authority": auth,
                            "variant": vname,
                            "cmd": " ".join(["hub", "review", "show", item["id"], *extra]),
                            "rc": r["rc"],
                            "stored_token_hits": hits,
                            "refuge_token_hits": upd_hits,
                            "out": r["out"][:4000],
                            "err": r["err"][:300],
                        }
                    )
    hub("wait", "--timeout", "600")
    notes45 = consume_all("round2_review_show")

    # --- review resolutions (operator actions)
    def resolve(name, key, *args, expect=(0, 1)):
        items = rv_by.get(key, [])
        if not items:
            r2_record(name, f"no review item for {key}", "QUESTIONABLE", "nothing to resolve")
            return None
        r = hub("review", "resolve", items[0]["id"], *args, expect=expect)
        R2.setdefault("resolves", {})[name] = {
            "cmd": " ".join(["hub", "review", "resolve", items[0]["id"], *args]),
            "rc": r["rc"],
            "out": r["out"].strip()[:600],
            "err": r["err"].strip()[:600],
        }
        return r

    resolve(
        "R1 --create on shielded_candidate (no authority)",
        ("school", "SCH-P03"),
        "--create",
        "--by",
        "probe",
    )
    resolve(
        "R2 --link open sibling on shielded_address (no authority)",
        ("dwp", "CB-P15-SIB"),
        "--link",
        CHILDREN[pb["P15"]["sibling"]]["child_id"],
        "--by",
        "probe",
    )
    wrong = [x for x in LA_CODES if x != pb["P16"]["authority"]][0]
    resolve(
        f"R3 --link unrelated open child on shielded_contact as wrong LA {wrong}",
        ("school", "SCH-P16-UNREL"),
        "--link",
        CHILDREN[pb["P16"]["unrelated"]]["child_id"],
        "--by",
        "probe",
        "--authority",
        wrong,
    )
    resolve(
        "R4 --create on shielded_address new child (no authority)",
        ("dwp", "CB-P17-NEWKID"),
        "--create",
        "--by",
        "probe",
    )
    resolve(
        "R5 --link open namesake on shielded_candidate (no authority)",
        ("dwp", "CB-P23"),
        "--link",
        CHILDREN[pb["P23"]["namesake"]]["child_id"],
        "--by",
        "probe",
    )
    wrong22 = [x for x in LA_CODES if x != pb["P22"]["authority"]][0]
    resolve(
        f"R6 --create on shielded twin candidate as wrong LA {wrong22}",
        ("school", "SCH-P22"),
        "--create",
        "--by",
        "probe",
        "--authority",
        wrong22,
    )
    wrong12 = [x for x in LA_CODES if x != pb["P12"]["authority"]][0]
    resolve(
        f"R7 --link open sibling on shielded_candidate as wrong LA {wrong12}",
        ("dwp", "CB-P12"),
        "--link",
        CHILDREN[pb["P12"]["sibling"]]["child_id"],
        "--by",
        "probe",
        "--authority",
        wrong12,
    )
    hub("wait", "--timeout", "600")
    notes5 = consume_all("round2_resolves")

    # --- search / show
    def search(name, *args):
        r = hub("search", *args, "--by", "probe", expect=(0, 1))
        R2["searches"].append(
            {
                "name": name,
                "cmd": "hub search " + " ".join(args) + " --by probe",
                "rc": r["rc"],
                "out": r["out"][:3000],
                "err": r["err"][:300],
            }
        )

    dob26 = c26["dob"].isoformat()
    search(
        "refuge postcode + dob (P26)",
        "--date-of-birth",
        dob26,
        "--postcode",
        r26["address"]["postcode"],
    )
    search(
        "original postcode + dob + names (P26)",
        "--given-name",
        c26["given"],
        "--family-name",
        c26["family"],
        "--date-of-birth",
        dob26,
        "--postcode",
        FAMILIES[c26["fam"]]["address"]["postcode"],
    )
    search(
        "names + dob + refuge postcode (P26)",
        "--given-name",
        c26["given"],
        "--family-name",
        c26["family"],
        "--date-of-birth",
        dob26,
        "--postcode",
        r26["address"]["postcode"],
    )
    search(
        "names + dob + refuge postcode only given name (P26)",
        "--given-name",
        c26["given"],
        "--date-of-birth",
        dob26,
        "--postcode",
        r26["address"]["postcode"],
    )
    search(
        "names + dob (P26)",
        "--given-name",
        c26["given"],
        "--family-name",
        c26["family"],
        "--date-of-birth",
        dob26,
    )
    search("dob only (P26)", "--date-of-birth", dob26)
    c23 = CHILDREN[pb["P23"]["target"]]
    search(
        "names + dob (P23 shielded + open namesake)",
        "--given-name",
        c23["given"],
        "--family-name",
        c23["family"],
        "--date-of-birth",
        c23["dob"].isoformat(),
    )

    def show(name, *args, expect=(0, 1, 2)):
        r = hub("show", *args, expect=expect)
        R2["searches"].append(
            {
                "name": name,
                "cmd": "hub show " + " ".join(args),
                "rc": r["rc"],
                "out": r["out"][:3000],
                "err": r["err"][:300],
            }
        )

    sid = tgt("P26")
    oth = [x for x in LA_CODES if x != pb["P26"]["authority"]][0]
    show("show shielded, no authority", sid, "--by", "probe")
    show(f"show shielded as other LA {oth}", sid, "--by", "probe", "--authority", oth)
    show(f"show shielded as refuge LA {r26['la']}", sid, "--by", "probe", "--authority", r26["la"])
    show(
        f"show shielded as own authority {pb['P26']['authority']}",
        sid,
        "--by",
        "probe",
        "--authority",
        pb["P26"]["authority"],
    )
    show("show break-glass without reason", sid, "--by", "probe", "--break-glass", expect=(1, 2))
    show(
        "show break-glass with reason",
        sid,
        "--by",
        "probe",
        "--break-glass",
        "--reason",
        "probe emergency",
    )
    hub("wait", "--timeout", "600")
    notes6 = consume_all("round2_show")

    # --- final scan
    exp = export("round2")
    expP = export("round2_protected", protected=True)
    rec = {r["child_id"]: r for r in exp}
    recP = {r["child_id"]: r for r in expP}
    shielded = {cid: r.get("shielding_authority") for cid, r in rec.items() if r.get("shielded")}
    tok = {pid: prof["tokens"] for pid, prof in REFUGE.items()}
    tok.update(alt_tokens)
    for cid, row in rec.items():
        if row.get("shielded"):
            present = [k for k in PROTECTED if k in (row.get("child") or {})]
            if present or token_hits(row, tok):
                R2["export_protected"].append(
                    {"record": cid, "present": present, "tokens": token_hits(row, tok)}
                )
            continue
        for owner, tn, tv in token_hits(row.get("child", {}), tok):
            R2["leaks"].append(
                {
                    "record": cid,
                    "new": cid not in pre_ids,
                    "owner": owner,
                    "token": tn,
                    "value": tv,
                    "line": row,
                }
            )
    allnotes = {"updates": notes4, "review_show": notes45, "resolves": notes5, "show": notes6}
    auth_of = {pid: pb[pid[:3]]["authority"] for pid in REFUGE}
    auth_of["P16-intl"] = pb["P16"]["authority"]
    counts = {}
    for ph, per in allnotes.items():
        for la, rows in per.items():
            for n in rows:
                counts[f"{ph}|{la}|{n.get('event')}"] = (
                    counts.get(f"{ph}|{la}|{n.get('event')}", 0) + 1
                )
                cid = n.get("child_id")
                if cid in shielded and la != shielded[cid]:
                    R2["notification_leaks"].append(
                        {"council": la, "why": "about shielded child", "n": n}
                    )
                for owner, tn, tv in token_hits(n, tok):
                    if la != auth_of.get(owner):
                        R2["notification_leaks"].append(
                            {"council": la, "why": f"carries {owner} {tn}={tv}", "n": n}
                        )
    R2["notification_counts"] = counts
    R2["notes_raw"] = allnotes
    # per-update outcomes
    src_index = {}
    for cid, row in rec.items():
        for s in row.get("sources") or []:
            src_index.setdefault((s.get("source"), s.get("source_record_id")), []).append(cid)
    rev2 = parse_jsonl(hub("review", "list", "--json")["out"], "review list")
    R2["review_final"] = rev2

    def lab(cid):
        r = rec.get(cid) or {}
        ch = r.get("child", {})
        return (
            f"{cid} {ch.get('given_name')} {ch.get('family_name')} "
            f"{'SHIELDED by ' + str(r.get('shielding_authority')) if r.get('shielded') else 'open'}"
            f"{' NEW' if cid not in pre_ids else ''}"
        )

    R2["outcomes"] = {}
    for name, u in R2["updates"].items():
        key = (u["source"], u["source_record_id"])
        R2["outcomes"][name] = {
            "linked": [lab(c) for c in src_index.get(key, [])],
            "reviews": [
                {
                    "reason": r["reason"],
                    "candidates": [lab(c["child_id"]) for c in r.get("candidates") or []],
                }
                for r in rev2
                if (r["source"], r["source_record_id"]) == key
            ],
            "reviews_after_phase4": [
                {"reason": r["reason"]} for r in rev if (r["source"], r["source_record_id"]) == key
            ],
        }

    # A7: shielded P25 moved (A7b, NHS + exact details) into address X, where the open A7a
    # record (another family's) already was. That record keeps its own address by design;
    # what matters is that her authority is told: an alert.shield_check naming that record.
    her_la = pb["P25"]["authority"]
    open_x = src_index.get(("dwp", "CB-A7-NEW"), [])
    alerts = [
        {"phase": ph, "notification": n}
        for ph, per in allnotes.items()
        for n in per.get(her_la, [])
        if n.get("event") == "alert.shield_check"
    ]
    unnamed = [c for c in open_x if not any(c in json.dumps(a["notification"]) for a in alerts)]
    a7_detail = {
        "her_record": tgt("P25"),
        "her_authority": her_la,
        "open_records_at_x": open_x,
        "A7b": R2["outcomes"].get("A7b"),
        "alert.shield_check to her authority": alerts,
    }
    R2["a7_alerts"] = alerts
    a7_name = "A7 shielded P25 moves into address X where an open record (A7a) is"
    if not open_x:
        r2_record(a7_name, a7_detail, "QUESTIONABLE", "no open record from CB-A7-NEW to be named")
    elif not unnamed:
        r2_record(
            a7_name,
            a7_detail,
            "SAFE",
            f"her authority {her_la} got alert.shield_check naming open record(s) "
            + ", ".join(open_x),
        )
    else:
        r2_record(
            a7_name,
            a7_detail,
            "LEAK",
            f"no alert.shield_check to her authority {her_la} naming open record(s) "
            + ", ".join(unnamed)
            + f" ({len(alerts)} alert.shield_check in all)",
        )

    # protected state of some records
    def pstate(cid):
        ch = (recP.get(cid) or {}).get("child", {})
        return {
            "address": ch.get("address"),
            "carers": ch.get("carers"),
            "gp": ch.get("gp_practice"),
            "services": ch.get("services"),
            "name": (ch.get("given_name"), ch.get("family_name")),
            "nhs": ch.get("nhs_number"),
            "shielded": (recP.get(cid) or {}).get("shielded"),
            "authority": (recP.get(cid) or {}).get("shielding_authority"),
        }

    R2["state"] = {
        "P26 target": pstate(sid),
        "C02 open child (LA-C02 hijack)": pstate(CHILDREN[ctl["C02"]["child"]]["child_id"]),
        "C05 open child (LA-C05)": pstate(j["child_id"]),
        "P25 target": pstate(tgt("P25")),
        "P02 target": pstate(tgt("P02")),
        "P15 sibling": pstate(CHILDREN[pb["P15"]["sibling"]]["child_id"]),
        "P16 unrelated": pstate(CHILDREN[pb["P16"]["unrelated"]]["child_id"]),
        "P23 namesake": pstate(CHILDREN[pb["P23"]["namesake"]]["child_id"]),
        "P31 target": pstate(tgt("P31")),
    }
    for cid in rec:
        if cid not in pre_ids:
            R2["state"][f"new record {cid}"] = pstate(cid)
    # takeover attempt at the very end
    oth2 = [x for x in LA_CODES if x != pb["P01"]["authority"]][0]
    r = hub(
        "shield",
        tgt("P01"),
        "--authority",
        oth2,
        "--by",
        "probe",
        "--reason",
        "takeover",
        expect=(0, 1),
    )
    rows = parse_jsonl(hub("export", quiet=True)["out"], "export")
    row = next((x for x in rows if x["child_id"] == tgt("P01")), {})
    R2["takeover"] = {
        "cmd": f"hub shield {tgt('P01')} --authority {oth2} --by probe --reason takeover",
        "rc": r["rc"],
        "out": r["out"].strip(),
        "err": r["err"].strip(),
        "after": {"shielded": row.get("shielded"), "authority": row.get("shielding_authority")},
        "original_authority": pb["P01"]["authority"],
    }
    with open(f"{OUT}/round2.json", "w") as f:
        json.dump(R2, f, indent=1, default=str)
    log(
        f"round2 written: {OUT}/round2.json leaks={len(R2['leaks'])} "
        f"notif_leaks={len(R2['notification_leaks'])}"
    )
    with open(f"{OUT}/report.md", "a") as f:
        f.write("\n## Round 2 verdicts\n\n| action | verdict | why |\n|---|---|---|\n")
        for a in R2["actions"]:
            f.write(f"| {a['action']} | {a['verdict']} | {a['why']} |\n")


if __name__ == "__main__":
    try:
        main()
    except BaseException as e:
        log(f"ABORTED: {type(e).__name__}: {e}")
        import traceback

        traceback.print_exc()
        raise
    finally:
        cleanup()
        with open(f"{OUT}/commands.json", "w") as f:
            json.dump(CMDS, f, indent=1, default=str)
        with open(f"{OUT}/contract.json", "w") as f:
            json.dump(CONTRACT, f, indent=1)
        log(f"artefacts in {OUT}")
    counts = {v: VERDICTS.count(v) for v in ("SAFE", "QUESTIONABLE", "LEAK")}
    status = 1 if counts["LEAK"] else 0
    log(f"verdicts: {counts} -> exit {status}")
    sys.exit(status)
