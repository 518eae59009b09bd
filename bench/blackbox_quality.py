#!/usr/bin/env python3
"""An independent, black-box matching-quality benchmark for the hub.

Written by a helper who read only the contract (../shared/contract.md) and the
domain notes (../shared/domain.md), never the hub's code: its own names,
families, corruptions and ground truth, as an external benchmark would be. It drives
the hub through its command line (subprocess) on a scratch PostgreSQL database and
a scratch RabbitMQ vhost, both removed at the end (also on failure).

    python -m bench.blackbox_quality [--n 5000] [--rate 0.30] [--double 0.25] [--seed 1] [--out DIR]

Python 3.11 standard library only; nothing is imported from the hub.
"""
from __future__ import annotations

import argparse
import collections
import copy
import datetime as dt
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time

# The `hub` beside this interpreter (a venv's), else the one on PATH.
_BESIDE = os.path.join(os.path.dirname(sys.executable), "hub")
HUB_DEFAULT = _BESIDE if os.path.exists(_BESIDE) else "hub"

# --------------------------------------------------------------------------
# Invented reference data (our own lists; nothing from the hub)
# --------------------------------------------------------------------------

MALE = """Oliver George Harry Noah Jack Leo Arthur Muhammad Oscar Charlie Jacob Thomas
Henry William Freddie Alfie Theo Archie Joshua James Isaac Alexander Edward Lucas Finley
Max Teddy Samuel Joseph Tommy Mason Daniel Benjamin Ethan Logan Reggie Adam Harrison
Sebastian Elijah Dylan Toby Jude Albie Ronnie Louie Riley Hugo Rory Jaxon Frankie Arlo
Zachary Ezra Luca Jenson David Elliot Mohammed Ollie Stanley Bobby Reuben Michael Carter
Ralph Louis Jesse Harvey Jake Albert Roman Hunter Gabriel Caleb Liam Ryan Kai Tyler Owen
Nathan Luke Matthew Aaron Connor Callum Kieran Lewis Jamie Christopher Andrew Robert
Richard Anthony Patrick Sean Declan Cameron Jayden Bradley Kyle Aiden Ibrahim Yusuf Ali
Omar Hamza Ayaan Zayn Rayan Idris Bilal Arjun Rohan Aarav Dev Krish Kacper Jakub Szymon
Filip Mateusz Tomasz Piotr Andrei Stefan Mihai Kwame Kofi Chidi Emeka Tunde Oluwaseun
Tobias Felix Jasper Rupert Barnaby Milo Otis Alfred Percy Vincent Ernest Sonny Brody
Dexter Jay Maxwell Nicholas Peter Simon Charles Frederick Theodore Nathaniel""".split()

FEMALE = """Olivia Amelia Isla Ava Mia Ivy Lily Isabella Rosie Sophia Grace Freya Willow
Florence Emily Ella Poppy Evie Elsie Charlotte Evelyn Sienna Sofia Daisy Phoebe Sophie
Alice Harper Matilda Ruby Emilia Maya Millie Isabelle Eva Luna Jessica Esme Arabella Aria
Elizabeth Lucy Chloe Holly Erin Scarlett Eliza Layla Imogen Thea Hallie Bella Mila Violet
Hannah Orla Georgia Zara Maisie Nancy Robyn Ellie Megan Lauren Amy Rebecca Katie Hollie
Abigail Jasmine Molly Niamh Caitlin Courtney Bethany Shannon Leah Chelsea Jade Paige
Kayleigh Demi Summer Autumn Amber Jennifer Sarah Rachel Laura Emma Victoria Catherine
Margaret Katherine Aisha Fatima Maryam Zainab Hafsa Khadija Amira Inaya Hana Safa Anaya
Priya Aanya Simran Navneet Harleen Zofia Zuzanna Julia Maja Lena Oliwia Alicja Ioana Elena
Maria Ana Adaeze Chioma Ngozi Abena Ama Esi Yetunde Folake Beatrice Clementine Harriet
Penelope Rosalind Iris Edith Mabel Hazel Ada Nina Lola Gracie Lexi Tilly Macy Eleanor
Margot Aurora Delilah Ophelia Annabelle Naomi Rose Heidi Tia Samantha Alexandra""".split()

# given name -> nicknames (our own small table)
NICKNAMES = {
    "William": ["Bill", "Will", "Billy"], "Elizabeth": ["Beth", "Liz", "Lizzie"],
    "Thomas": ["Tom", "Tommy"], "Alexander": ["Alex", "Sandy"], "Benjamin": ["Ben", "Benji"],
    "Samuel": ["Sam", "Sammy"], "Joseph": ["Joe", "Joey"], "James": ["Jim", "Jimmy"],
    "Daniel": ["Dan", "Danny"], "Matthew": ["Matt"], "Michael": ["Mike", "Mikey"],
    "Christopher": ["Chris", "Kit"], "Nicholas": ["Nick", "Nicky"],
    "Robert": ["Rob", "Bob", "Bobby"],
    "Richard": ["Rich", "Dick"], "Edward": ["Ed", "Eddie", "Ted"], "Frederick": ["Fred", "Freddie"],
    "Charles": ["Charlie", "Chas"], "Jacob": ["Jake"], "Henry": ["Harry", "Hal"],
    "Anthony": ["Tony"], "Andrew": ["Andy", "Drew"], "Theodore": ["Theo", "Teddy"],
    "Nathaniel": ["Nate", "Nat"], "Zachary": ["Zach"], "Isabella": ["Bella", "Izzy"],
    "Isabelle": ["Izzy"], "Charlotte": ["Lottie", "Charlie"], "Katherine": ["Kate", "Katie"],
    "Catherine": ["Cathy", "Kate"], "Rebecca": ["Becky", "Becca"], "Jennifer": ["Jenny", "Jen"],
    "Margaret": ["Maggie", "Meg", "Peggy"], "Victoria": ["Vicky", "Tori"],
    "Abigail": ["Abby", "Abi"],
    "Jessica": ["Jess", "Jessie"], "Eleanor": ["Ellie", "Nell"], "Florence": ["Flo", "Florrie"],
    "Matilda": ["Tilly", "Tilda"], "Amelia": ["Millie", "Amy"], "Penelope": ["Penny"],
    "Harriet": ["Hattie"], "Annabelle": ["Annie", "Belle"], "Sophia": ["Sophie"],
    "Olivia": ["Liv", "Livvy"], "Emily": ["Em", "Emmy"], "Georgia": ["Georgie"],
    "Samantha": ["Sam", "Sammie"], "Alexandra": ["Alex", "Lexi"], "Gabriel": ["Gabe"],
    "Sebastian": ["Seb"], "Harrison": ["Harry"], "Oliver": ["Ollie", "Olly"],
    "Rosalind": ["Ros", "Rosie"], "Elena": ["Lena"],
}

# ordered roughly by commonness; weights follow a Zipf-like skew
SURNAMES_COMMON = """Smith Jones Williams Taylor Brown Davies Khan Evans Wilson Patel Thomas
Johnson Roberts Wright Walker Robinson Thompson White Hughes Edwards Ahmed Green Hall Wood
Harris Hussain Lewis Martin Jackson Ali Clarke Begum Turner Hill Scott Cooper Singh Morris
Ward Moore King Watson Baker Kaur Harrison Morgan Young Allen Mitchell James Anderson
Phillips Lee Bell Parker Davis Bennett Griffiths Shah Cook Price Lloyd Jenkins Kelly Carter
Shaw Cox Richards Chapman Marshall Bailey Rahman Webb Rogers Murphy Graham Mills Ellis
Islam Powell Adams Stevens Fisher Russell Gray Mason Holmes Hunt Palmer Knight Akhtar Butler
Barnes Matthews Fletcher Dixon Iqbal Jordan Rose Sutton Murray Hamilton Gibson Mahmood
Wallace Cunningham Reid Kennedy Stewart Campbell Macdonald Mackenzie O'Brien O'Connor
O'Neill Doherty Byrne McCarthy Quinn Gallagher Sullivan Brennan Flynn""".split()

SURNAMES_TAIL = """Nowak Kowalski Wisniewski Lewandowski Zielinski Kaminski Wojcik Popescu
Ionescu Popa Dumitru Silva Santos Ferreira Costa Oliveira Pereira Nguyen Tran Chen Wang Zhang
Liu Okafor Okonkwo Adeyemi Oyelaran Mensah Owusu Boateng Asante Mohamed Abdi Hassan Yilmaz
Kaya Demir Rossi Russo Ferrari Esposito Bianchi Muller Schmidt Fischer Weber Kovacs Nagy
Horvath Papadopoulos Georgiou Abbott Ainsworth Barlow Bentley Birch Blackburn Booth Bradshaw
Brooks Burton Chambers Collier Crawford Dawson Dean Dobson Drake Duffy Eastwood Fairclough
Farrar Fenwick Foster Fowler Garner Gill Goddard Greenwood Hartley Haworth Heaton Holt
Horsfall Hudson Ingham Kershaw Lambert Lister Lord Lund Marsden Metcalfe Milner Nuttall
Oldroyd Ormerod Pickles Priestley Ramsden Rhodes Sharp Stead Sunderland Sykes Thackeray
Wade Walsh Whitaker Wilkinson Winterbottom Wormald Ackroyd Bairstow Brierley Crabtree Dyson
Firth Haigh Hirst Jowett Naylor Pollard Rushworth Sutcliffe Tattersall Uttley Varley
Waddington Yates Atkinson Bamford Beaumont Calvert Cawthorne Denton Emsley Exley Gaunt
Hebden Illingworth Jagger Kitching Lockwood Moorhouse Newsome Pearson Quarmby Riley Senior
Shackleton Spencer Swift Thornton Tordoff Ward Walton Wainwright Armitage Bottomley Clegg
Greaves Holroyd Mellor Redfearn Schofield Storey Thwaite Whiteley Bhatti Chaudhry Malik
Qureshi Siddiqui Mistry Chauhan Mehta Sandhu Gill Dhillon Bains Osei Appiah Adebayo
Ogunleye Nwosu Eze Kamara Conteh Barbosa Moreira Kowalczyk Mazur Krawczyk""".split()

SURNAMES_HYPHEN = """Smith-Jones Clarke-Williams Hughes-Davies Ashton-Hart Vaughan-Thomas
Parry-Jones Wynne-Evans Bourne-Taylor Heath-Stubbs Pryce-Morgan Lloyd-Owen Carter-Khan
Moss-Barker Hale-Ahmed""".split()
SURNAMES_SPACED = ["De Souza", "Van Dijk", "Da Costa"]

STREET_WORDS = """Stanley Victoria Albert Church Station Park Mill Chapel Queens Kings
Manor Grove Beech Oak Ash Elm Willow Cedar Hawthorn Rowan Meadow Brook Spring Westfield
Eastfield Highfield Greenbank Moorland Cliff Hollin Cardigan Harehills Roundhay Headingley
Burley Kirkstall Armley Bramley Shaw Woodhouse Cavendish Devonshire Belmont Clarendon Grange
Laburnum Lime Poplar Sycamore Holly Ivy Primrose Bluebell Heather Thorn Ryecroft""".split()
STREET_TYPES = ["Road", "Street", "Lane", "Avenue", "Close", "Grove", "Terrace", "Crescent",
                "Drive", "Way", "Gardens", "Place"]

# town, postcode area, max district, LA code (three-digit), phone prefix (Ofcom drama ranges)
TOWNS = [
    ("Leeds", "LS", 29, "383", "0113 496 0"),
    ("Bradford", "BD", 22, "380", "01632 960"),
    ("Manchester", "M", 40, "352", "0161 496 0"),
    ("Birmingham", "B", 45, "330", "0121 496 0"),
    ("Sheffield", "S", 36, "373", "0114 496 0"),
    ("Bristol", "BS", 41, "801", "0117 496 0"),
    ("Newcastle upon Tyne", "NE", 15, "391", "0191 498 0"),
    ("Liverpool", "L", 38, "341", "0151 496 0"),
    ("Nottingham", "NG", 25, "892", "0115 496 0"),
    ("Leicester", "LE", 19, "856", "0116 496 0"),
]
TOWN_WEIGHTS = [8, 5, 6, 10, 5, 5, 3, 5, 3, 3]
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

CORRUPTIONS = ["typo_given", "typo_family", "nickname", "swap_names", "hyphen_part",
               "new_surname", "dob_swap", "dob_digit", "nhs_missing", "moved",
               "missing_given", "missing_family"]
INCOMPATIBLE = {frozenset(p) for p in [
    ("missing_given", "missing_family"), ("missing_given", "typo_given"),
    ("missing_given", "nickname"), ("missing_given", "swap_names"),
    ("missing_family", "typo_family"), ("missing_family", "hyphen_part"),
    ("missing_family", "new_surname"), ("missing_family", "swap_names"),
    ("typo_given", "nickname"), ("new_surname", "hyphen_part"),
    ("new_surname", "typo_family"), ("hyphen_part", "typo_family"),
    ("dob_swap", "dob_digit")]}
# rarely applicable kinds weighted up so that each type gets a usable sample
WEIGHT = {"nickname": 4.0, "hyphen_part": 8.0, "dob_swap": 1.5}
APPLY_ORDER = ["nickname", "typo_given", "new_surname", "hyphen_part", "typo_family",
               "dob_swap", "dob_digit", "nhs_missing", "moved", "missing_given",
               "missing_family", "swap_names"]

TODAY = dt.date(2026, 12, 1)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def dedupe(seq):
    seen, out = set(), []
    for s in seq:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def nhs_check_digit(nine: str):
    total = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1), strict=False))
    c = 11 - total % 11
    if c == 11:
        return 0
    if c == 10:
        return None
    return c


def nhs_valid(n: str) -> bool:
    if not (isinstance(n, str) and len(n) == 10 and n.isdigit()):
        return False
    c = nhs_check_digit(n[:9])
    return c is not None and c == int(n[9])


class Gen:
    def __init__(self, seed: int):
        self.r = random.Random(seed)
        self.male = dedupe(MALE)[:150]
        self.female = dedupe(FEMALE)[:150]
        sur = dedupe(SURNAMES_COMMON + SURNAMES_TAIL)
        # interleave hyphenated/spaced ones into the tail
        tail_extra = SURNAMES_HYPHEN + SURNAMES_SPACED
        sur = [s for s in sur if s not in tail_extra]
        sur = sur[:300 - len(tail_extra)]
        for i, s in enumerate(tail_extra):
            sur.insert(60 + i * 9, s)
        self.surnames = sur[:300]
        self.sur_weights = [1.0 / (i + 6) ** 1.1 for i in range(len(self.surnames))]
        self.nhs_used = set()
        self.phone_used = set()
        self.next_person = 0
        self.next_family = 0

    # -- primitives
    def surname(self):
        return self.r.choices(self.surnames, self.sur_weights)[0]

    def given(self, sex):
        return self.r.choice(self.male if sex == "male" else self.female)

    def nhs(self):
        while True:
            nine = "999" + "".join(self.r.choice("0123456789") for _ in range(6))
            c = nhs_check_digit(nine)
            if c is None:
                continue
            n = nine + str(c)
            if n not in self.nhs_used:
                self.nhs_used.add(n)
                assert n.startswith("999") and nhs_valid(n)
                return n

    def phone(self, town_idx, mobile=None):
        if mobile is None:
            mobile = self.r.random() < 0.6
        for _ in range(1000):
            if mobile:
                p = "07700 900" + f"{self.r.randrange(1000):03d}"
            else:
                p = TOWNS[town_idx][4] + f"{self.r.randrange(1000):03d}"
            if p not in self.phone_used or len(self.phone_used) > 9000:
                self.phone_used.add(p)
                return p
        return p

    def postcode(self, town_idx):
        _, area, maxd, _, _ = TOWNS[town_idx]
        return (f"{area}{self.r.randint(1, maxd):d} {self.r.randint(1, 9):d}"
                f"{self.r.choice(INWARD_LETTERS)}{self.r.choice(INWARD_LETTERS)}")

    def address(self, town_idx=None):
        if town_idx is None:
            town_idx = self.r.choices(range(len(TOWNS)), TOWN_WEIGHTS)[0]
        street = f"{self.r.choice(STREET_WORDS)} {self.r.choice(STREET_TYPES)}"
        num = self.r.randint(1, 180)
        if self.r.random() < 0.15:
            lines = [f"Flat {self.r.randint(1, 24):d}", f"{num:d} {street}"]
        else:
            lines = [f"{num:d} {street}"]
        town, _, _, la, _ = TOWNS[town_idx]
        return {"lines": lines, "town": town, "postcode": self.postcode(town_idx), "la": la}

    def rand_date(self, lo: dt.date, hi: dt.date):
        return lo + dt.timedelta(days=self.r.randrange((hi - lo).days + 1))

    def town_idx_of(self, addr):
        for i, t in enumerate(TOWNS):
            if t[3] == addr["la"]:
                return i
        return 0

    def school(self, addr, dob):
        age = (TODAY - dob).days / 365.25
        if age < 4.5:
            return None
        kind = "Primary School" if age < 11 else "Academy"
        word = self.r.choice(STREET_WORDS)
        urn = str(self.r.randint(100000, 149999))
        return {"urn": urn, "name": f"{word} {kind}"}

    def gp(self, addr):
        word = self.r.choice(STREET_WORDS)
        return {"ods_code": f"{self.r.choice('BCDFGHJKLMNPY')}{self.r.randrange(100000):05d}",
                "name": f"{word} Medical Centre"}

    # -- families and children
    def family(self):
        fam_id = self.next_family
        self.next_family += 1
        r = self.r
        if r.random() < 0.04:
            a, b = self.surname(), self.surname()
            while b == a or "-" in a or "-" in b or " " in a or " " in b:
                a, b = self.surname(), self.surname()
            fam_surname = f"{a}-{b}"
        else:
            fam_surname = self.surname()
        addr = self.address()
        ti = self.town_idx_of(addr)
        carers = []
        mother_surname = fam_surname if r.random() < 0.75 else self.surname()
        carers.append({"name": f"{self.given('female')} {mother_surname}",
                       "relationship": "mother", "phone": self.phone(ti)})
        if r.random() < 0.65:
            father_given = self.given("male")
            father_surname = (fam_surname if "-" not in fam_surname
                              else fam_surname.split("-")[r.randrange(2)])
            carers.append({"name": f"{father_given} {father_surname}",
                           "relationship": "father", "phone": self.phone(ti)})
        if r.random() < 0.04:
            carers = [{"name": f"{self.given(r.choice(['male', 'female']))} {self.surname()}",
                       "relationship": r.choice(["grandmother", "guardian", "aunt"]),
                       "phone": self.phone(ti)}]
        return {"family_id": fam_id, "surname": fam_surname, "address": addr, "carers": carers,
                "gp": self.gp(addr)}

    def child(self, fam, dob, sex=None, has_nhs=None):
        r = self.r
        pid = self.next_person
        self.next_person += 1
        sex = sex or r.choice(["female", "male"])
        if has_nhs is None:
            has_nhs = r.random() < 0.85
        c = {
            "nhs_number": self.nhs() if has_nhs else None,
            "upn": None,
            "given_name": self.given(sex),
            "middle_names": None,
            "family_name": fam["surname"],
            "former_family_names": [],
            "date_of_birth": dob.isoformat(),
            "sex": sex,
            "address": copy.deepcopy(fam["address"]),
            "carers": copy.deepcopy(fam["carers"]),
            "education_setting": self.school(fam["address"], dob),
            "gp_practice": copy.deepcopy(fam["gp"]),
            "services": [],
        }
        return {"person_id": pid, "family_id": fam["family_id"], "child": c}

    def family_children(self, fam, dob_lo, dob_hi, existing_given=()):
        r = self.r
        k = r.choices([1, 2, 3, 4, 5], [40, 35, 17, 6, 2])[0]
        first = self.rand_date(dob_lo, dob_hi)
        dobs = [first]
        for _ in range(k - 1):
            d = dobs[-1] + dt.timedelta(days=r.randint(330, 5 * 365))
            if d > dob_hi:
                break
            dobs.append(d)
        out = []
        used = set(existing_given)
        twins = r.random() < 0.035
        for i, d in enumerate(dobs):
            ch = self.child(fam, d)
            while ch["child"]["given_name"] in used:
                ch["child"]["given_name"] = self.given(ch["child"]["sex"])
            used.add(ch["child"]["given_name"])
            out.append(ch)
            if twins and i == 0:
                tw = self.child(fam, d, sex=r.choice([ch["child"]["sex"], None]))
                while tw["child"]["given_name"] in used:
                    tw["child"]["given_name"] = self.given(tw["child"]["sex"])
                used.add(tw["child"]["given_name"])
                tw["twin_of"] = ch["person_id"]
                ch["twin_of"] = tw["person_id"]
                out.append(tw)
        return out


# --------------------------------------------------------------------------
# Corruptions
# --------------------------------------------------------------------------

KEYB = {c: n for c, n in zip("qwertyuiopasdfghjklzxcvbnm",
        ["wa", "qes", "wrd", "etf", "ryg", "tuh", "yij", "uok", "ipl", "ol",
         "qsz", "awdx", "sefc", "drgv", "fthb", "gyjn", "hukm", "jil", "kop", "asx",
         "zdsc", "xfv", "cgb", "vhn", "bjm", "nk"], strict=False)}


def typo(r: random.Random, name: str) -> str:
    for _ in range(50):
        letters = list(name)
        idx = [i for i, ch in enumerate(letters) if ch.isalpha()]
        if len(idx) < 2:
            return name + r.choice("aeiou")
        op = r.choice(["sub", "del", "ins", "swap"])
        i = r.choice(idx[1:]) if r.random() < 0.85 else idx[0]
        ch = letters[i]
        low = ch.lower()
        if op == "sub":
            new = r.choice(KEYB.get(low, "aeiou"))
            letters[i] = new.upper() if ch.isupper() else new
        elif op == "del" and len(idx) > 3:
            del letters[i]
        elif op == "ins":
            new = r.choice(KEYB.get(low, "aeiou") + low)
            letters.insert(i + 1, new)
        elif op == "swap" and i + 1 < len(letters) and letters[i + 1].isalpha():
            a, b = letters[i], letters[i + 1]
            if i == 0:
                letters[i], letters[i + 1] = b.upper(), a.lower()
            else:
                letters[i], letters[i + 1] = b, a
        out = "".join(letters)
        if out != name and out.lower() != name.lower():
            return out
    return name + "e"


def applicable(kind: str, truth: dict) -> bool:
    c = truth["child"]
    d = dt.date.fromisoformat(c["date_of_birth"])
    if kind == "nickname":
        return c["given_name"] in NICKNAMES
    if kind == "hyphen_part":
        return "-" in c["family_name"]
    if kind == "dob_swap":
        return d.day <= 12 and d.day != d.month
    if kind == "nhs_missing":
        return c["nhs_number"] is not None
    return True


def choose_corruptions(r: random.Random, truth: dict, count: int):
    kinds = [k for k in CORRUPTIONS if applicable(k, truth)]
    first = r.choices(kinds, [WEIGHT.get(k, 1.0) for k in kinds])[0]
    chosen = [first]
    if count > 1:
        rest = [k for k in kinds if k != first and frozenset((first, k)) not in INCOMPATIBLE]
        if rest:
            chosen.append(r.choice(rest))
    return sorted(chosen, key=APPLY_ORDER.index)


def apply_corruptions(gen: Gen, child: dict, kinds) -> None:
    r = gen.r
    for k in kinds:
        if k == "typo_given":
            child["given_name"] = typo(r, child["given_name"])
        elif k == "typo_family":
            child["family_name"] = typo(r, child["family_name"])
        elif k == "nickname":
            child["given_name"] = r.choice(NICKNAMES[child["given_name"]])
        elif k == "swap_names":
            child["given_name"], child["family_name"] = child["family_name"], child["given_name"]
        elif k == "hyphen_part":
            child["family_name"] = child["family_name"].split("-")[r.randrange(2)]
        elif k == "new_surname":
            old = child["family_name"]
            new = gen.surname()
            while new == old:
                new = gen.surname()
            child["family_name"] = new
            if r.random() < 0.5:
                child["former_family_names"] = [old]
        elif k == "dob_swap":
            d = dt.date.fromisoformat(child["date_of_birth"])
            child["date_of_birth"] = dt.date(d.year, d.day, d.month).isoformat()
        elif k == "dob_digit":
            s = child["date_of_birth"]
            for _ in range(200):
                pos = r.choice([2, 3, 5, 6, 8, 9])
                nd = r.choice([x for x in "0123456789" if x != s[pos]])
                cand = s[:pos] + nd + s[pos + 1:]
                try:
                    d = dt.date.fromisoformat(cand)
                except ValueError:
                    continue
                if dt.date(2000, 1, 1) <= d <= TODAY:
                    child["date_of_birth"] = cand
                    break
        elif k == "nhs_missing":
            child["nhs_number"] = None
        elif k == "moved":
            ti = r.choices(range(len(TOWNS)), TOWN_WEIGHTS)[0] if r.random() < 0.35 \
                else gen.town_idx_of(child["address"])
            child["address"] = gen.address(ti)
            for c in child["carers"]:
                if r.random() < 0.3:
                    c["phone"] = gen.phone(ti)
        elif k == "missing_given":
            child["given_name"] = None
        elif k == "missing_family":
            child["family_name"] = None
        else:
            raise ValueError(k)


# --------------------------------------------------------------------------
# Data set
# --------------------------------------------------------------------------

def update(source, srid, child):
    return {"source": source, "source_record_id": srid, "source_version": 1,
            "kind": "upsert", "child": child}


def build_dataset(n: int, rate: float, double_share: float, seed: int, outdir: str):
    gen = Gen(seed)
    r = gen.r
    persons = {}          # person_id -> {"person_id","family_id","child", ...}
    families = {}
    lo, hi = dt.date(2008, 1, 1), dt.date(2025, 12, 31)
    while len(persons) < n:
        fam = gen.family()
        families[fam["family_id"]] = fam
        for ch in gen.family_children(fam, lo, hi):
            ch["existing"] = True
            persons[ch["person_id"]] = ch
    # trim to exactly n
    for pid in sorted(persons)[n:]:
        del persons[pid]
    existing_ids = sorted(persons)

    truth = []            # one row per source record
    initial = []
    for pid in existing_ids:
        srid = f"PDS-{pid + 1:07d}"
        initial.append(update("pds", srid, copy.deepcopy(persons[pid]["child"])))
        truth.append({"source": "pds", "source_record_id": srid, "person_id": pid,
                      "existing": True, "corruptions": []})

    # ---- feed sizes
    total = n
    dwp_n = round(total * 0.55)
    school_n = total - dwp_n
    dwp_new = round(dwp_n * 0.10)
    school_new = round(school_n * 0.10)
    dwp_old = dwp_n - dwp_new
    school_old = school_n - school_new

    # ---- new children (not yet indexed)
    new_babies, new_older = [], []
    n_babies = dwp_new // 2
    for _ in range(n_babies):
        if r.random() < 0.5:
            # a new sibling in an existing family: same surname, address, carers
            sib = persons[r.choice(existing_ids)]
            fam = families[sib["family_id"]]
            ch = gen.child(fam, gen.rand_date(dt.date(2026, 1, 1), dt.date(2026, 11, 20)))
            used = {persons[p]["child"]["given_name"] for p in existing_ids
                    if persons[p]["family_id"] == fam["family_id"]}
            while ch["child"]["given_name"] in used:
                ch["child"]["given_name"] = gen.given(ch["child"]["sex"])
            ch["new_kind"] = "baby_sibling"
        else:
            fam = gen.family()
            families[fam["family_id"]] = fam
            ch = gen.child(fam, gen.rand_date(dt.date(2026, 1, 1), dt.date(2026, 11, 20)))
            ch["new_kind"] = "baby"
        ch["existing"] = False
        persons[ch["person_id"]] = ch
        new_babies.append(ch["person_id"])
    n_overlap = round(school_new * 0.3)
    n_older = school_new + max(0, dwp_new - n_babies - n_overlap)
    for _ in range(n_older):
        fam = gen.family()
        families[fam["family_id"]] = fam
        ch = gen.child(fam, gen.rand_date(dt.date(2010, 9, 1), dt.date(2021, 8, 31)),
                       has_nhs=r.random() < 0.6)
        ch["existing"] = False
        ch["new_kind"] = "not_yet_indexed"
        persons[ch["person_id"]] = ch
        new_older.append(ch["person_id"])
    school_new_ids = new_older[:school_new]
    dwp_new_ids = new_babies + school_new_ids[:n_overlap] + new_older[school_new:]
    dwp_new_ids = dwp_new_ids[:dwp_new]

    # ---- existing children in each feed
    school_age = [p for p in existing_ids
                  if dt.date(2008, 9, 1)
                  <= dt.date.fromisoformat(persons[p]["child"]["date_of_birth"])
                  <= dt.date(2022, 8, 31)]
    dwp_old_ids = r.sample(existing_ids, dwp_old)
    school_old_ids = r.sample(school_age, min(school_old, len(school_age)))

    feeds = {"dwp": [], "school": []}
    prefix = {"dwp": "CB-%06d", "school": "SC-%06d"}
    for source, olds, news in (("dwp", dwp_old_ids, dwp_new_ids),
                               ("school", school_old_ids, school_new_ids)):
        items = [(p, True) for p in olds] + [(p, False) for p in news]
        r.shuffle(items)
        for i, (pid, is_old) in enumerate(items):
            srid = prefix[source] % (i + 1)
            child = copy.deepcopy(persons[pid]["child"])
            kinds = []
            if is_old and r.random() < rate:
                cnt = 2 if r.random() < double_share else 1
                kinds = choose_corruptions(r, persons[pid], cnt)
                apply_corruptions(gen, child, kinds)
            if source == "dwp" and r.random() < 0.5:
                child["education_setting"] = None
            assert child["given_name"] or child["family_name"]
            assert child["nhs_number"] is None or (child["nhs_number"].startswith("999")
                                                   and nhs_valid(child["nhs_number"]))
            feeds[source].append(update(source, srid, child))
            truth.append({"source": source, "source_record_id": srid, "person_id": pid,
                          "existing": is_old, "corruptions": kinds})

    os.makedirs(outdir, exist_ok=True)
    paths = {}
    for name, rows in (("initial", initial), ("dwp", feeds["dwp"]), ("school", feeds["school"])):
        p = os.path.join(outdir, name + ".jsonl")
        with open(p, "w") as f:
            for u in rows:
                f.write(json.dumps(u) + "\n")
        paths[name] = p
    with open(os.path.join(outdir, "truth.jsonl"), "w") as f:
        for t in truth:
            f.write(json.dumps(t) + "\n")
    with open(os.path.join(outdir, "persons.jsonl"), "w") as f:
        for pid in sorted(persons):
            f.write(json.dumps(persons[pid]) + "\n")
    updates = {(u["source"], u["source_record_id"]): u
               for u in initial + feeds["dwp"] + feeds["school"]}
    return persons, truth, updates, paths, gen


# --------------------------------------------------------------------------
# Driving the hub
# --------------------------------------------------------------------------

class Hub:
    def __init__(self, hub, env, outdir, log):
        self.hub, self.env, self.outdir, self.log = hub, env, outdir, log
        self.calls = []   # (argv, rc, seconds, stdout_head, stderr)

    def __call__(self, *args, timeout=1800, stdout_file=None, env_extra=None, quiet=False):
        argv = [self.hub, *args]
        env = dict(self.env)
        if env_extra:
            env.update(env_extra)
        t0 = time.time()
        if stdout_file:
            with open(stdout_file, "w") as out:
                p = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.PIPE,
                                   text=True, timeout=timeout)
            stdout = ""
        else:
            p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
            stdout = p.stdout
        secs = time.time() - t0
        self.calls.append({"argv": " ".join(["hub", *args]), "rc": p.returncode, "secs": secs,
                           "stdout": stdout, "stderr": p.stderr})
        if not quiet:
            self.log(f"  $ hub {' '.join(args)}  -> rc={p.returncode:d} ({secs:.1f}s)")
        return p.returncode, stdout, p.stderr


def sh(argv, check=True, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed rc={p.returncode:d}: {p.stderr.strip()}")
    return p


def read_jsonl(path_or_text, is_text=False):
    text = path_or_text if is_text else open(path_or_text).read()
    rows, bad = [], []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            bad.append((i, line[:200]))
    return rows, bad


def parse_list_json(text):
    """review/dlq list --json: JSON lines per the contract; accept a JSON array as well,
    but note it."""
    s = text.strip()
    if not s:
        return [], "empty"
    if s.startswith("["):
        return json.loads(s), "array"
    rows, bad = read_jsonl(s, is_text=True)
    return rows, ("jsonl" if not bad else f"jsonl_with_{len(bad):d}_bad_lines")


# --------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------

def pct(a, b):
    return f"{100.0 * a / b:.2f}%" if b else "n/a"


def score(persons, truth, updates, export_rows, reviews, dlqs, out):
    P = out
    loc = {}                      # (source, srid) -> child_id
    multi_loc = []
    child_rows = {}
    for row in export_rows:
        child_rows[row.get("child_id")] = row
        for s in row.get("sources") or []:
            key = (s.get("source"), s.get("source_record_id"))
            if key in loc and loc[key] != row.get("child_id"):
                multi_loc.append(key)
            loc[key] = row.get("child_id")
    rev = collections.defaultdict(list)
    for r_ in reviews:
        rev[(r_.get("source"), r_.get("source_record_id"))].append(r_)
    dlq = collections.defaultdict(list)
    for d in dlqs:
        dlq[(d.get("source"), d.get("source_record_id"))].append(d)

    tr = {(t["source"], t["source_record_id"]): t for t in truth}
    # anchors: the child record holding each PDS record
    anchor = {}
    owners = collections.defaultdict(set)
    pds_missing = []
    for t in truth:
        if t["source"] != "pds":
            continue
        key = (t["source"], t["source_record_id"])
        if key in loc:
            anchor[t["person_id"]] = loc[key]
            owners[loc[key]].add(t["person_id"])
        else:
            pds_missing.append(key)
    # persons by child record (all sources), for detecting mixing of people
    held_by = collections.defaultdict(set)
    for t in truth:
        key = (t["source"], t["source_record_id"])
        if key in loc:
            held_by[loc[key]].add(t["person_id"])

    # ---- initial load
    n_pds = sum(1 for t in truth if t["source"] == "pds")
    merged_groups = [sorted(v) for v in owners.values() if len(v) > 1]
    missing_in_rev = sum(1 for k in pds_missing if k in rev)
    missing_in_dlq = sum(1 for k in pds_missing if k in dlq)
    merged_note = f" (persons {merged_groups[:10]})" if merged_groups else ""
    P(f"Initial load (pds): {n_pds:d} records, {len(owners):d} child records hold them, "
      f"{len(pds_missing):d} records not in export "
      f"(review {missing_in_rev:d}, dead-lettered {missing_in_dlq:d}), "
      f"{len(merged_groups):d} child records hold >1 person{merged_note}")
    by_nhs = collections.defaultdict(list)
    for row in export_rows:
        n_ = (row.get("child") or {}).get("nhs_number")
        if n_:
            by_nhs[n_].append(row)
    nhs_multi = {k: v for k, v in by_nhs.items() if len(v) > 1}
    P(f"Export: {len(export_rows):d} child records; "
      f"{len(multi_loc):d} source records appear on more than one child record; "
      f"{len(nhs_multi):d} NHS numbers are held by more than one child record")
    for k, rows in list(nhs_multi.items())[:10]:
        holders = "; ".join(
            f"{str(r_.get('child_id'))[:8]} ({r_['child'].get('given_name')} "
            f"{r_['child'].get('family_name')} {r_['child'].get('date_of_birth')}, sources "
            + ",".join(s_.get("source_record_id") for s_ in r_.get("sources") or [])
            + ")"
            for r_ in rows)
        P(f"  NHS {k} on: {holders}")

    # ---- feed updates
    stats = collections.defaultdict(collections.Counter)   # bucket -> counter
    details = {"wrong": [], "dup": [], "review": [], "dlq": [], "lost": [],
               "new_wrong": [], "new_other": []}
    review_reasons = collections.Counter()
    dlq_reasons = collections.Counter()
    n_updates = 0
    review_total = 0
    dlq_total = 0
    new_person_locs = collections.defaultdict(list)
    review_has_truth = collections.Counter()
    for t in truth:
        if t["source"] == "pds":
            continue
        n_updates += 1
        key = (t["source"], t["source_record_id"])
        pid = t["person_id"]
        in_exp = key in loc
        in_rev = key in rev
        in_dlq = key in dlq
        if in_rev:
            review_total += 1
            for r_ in rev[key][:1]:
                review_reasons[r_.get("reason")] += 1
        if in_dlq:
            dlq_total += 1
            for d in dlq[key][:1]:
                dlq_reasons[d.get("reason")] += 1
        if t["existing"] and pid not in anchor and not (in_exp and loc[key] in owners):
            # its PDS record is on no child record (initial load parked it): not scored as
            # an indexed child; counted apart
            if in_exp:
                c = loc[key]
                outcome = ("on a record holding another person's pds record" if c in owners
                           else "on a new record")
            else:
                outcome = "review" if in_rev else "dlq" if in_dlq else "lost"
            stats["UNANCHORED"]["n"] += 1
            stats["UNANCHORED"][outcome] += 1
            continue
        if t["existing"]:
            if not t["corruptions"]:
                buckets = ["none"]
            else:
                buckets = list(t["corruptions"]) + (["(two corruptions)"]
                                                    if len(t["corruptions"]) > 1 else [])
            buckets.append("[update has NHS no.]" if updates[key]["child"].get("nhs_number")
                           else "[no NHS no.]")
            buckets.append("ALL")
            if in_exp:
                c = loc[key]
                if c in owners:
                    outcome = "correct" if pid in owners[c] else "wrong"
                else:
                    outcome = "dup"
            elif in_rev:
                outcome = "review"
                cand_ids = [cd.get("child_id") for cd in rev[key][0].get("candidates") or []]
                review_has_truth["truth_among_candidates" if anchor.get(pid) in cand_ids
                                 else "truth_not_among_candidates"] += 1
            elif in_dlq:
                outcome = "dlq"
            else:
                outcome = "lost"
            if in_exp and (in_rev or in_dlq):
                stats["ALL"]["also_in_review_or_dlq"] += 1
            if in_exp and len(owners.get(loc[key], ())) > 1:
                stats["ALL"]["on_merged_record"] += 1
            for b in buckets:
                stats[b]["n"] += 1
                stats[b][outcome] += 1
            if outcome in ("wrong", "dup", "review", "dlq", "lost"):
                details[outcome].append(key)
        else:
            if in_exp:
                c = loc[key]
                new_person_locs[pid].append(c)
                if c in owners:
                    stats["NEW"]["linked_to_existing"] += 1
                    details["new_wrong"].append(key)
                else:
                    stats["NEW"]["on_new_record"] += 1
            elif in_rev:
                stats["NEW"]["review"] += 1
            elif in_dlq:
                stats["NEW"]["dlq"] += 1
            else:
                stats["NEW"]["lost"] += 1
            stats["NEW"]["n"] += 1

    # new children: created once, alone?
    newp = [pid for pid, p in persons.items() if not p.get("existing")]
    created_ok = split = mixed = 0
    for pid in newp:
        locs = set(new_person_locs.get(pid, []))
        new_locs = {c for c in locs if c not in owners}
        if len(new_locs) > 1:
            split += 1
        for c in new_locs:
            if held_by[c] - {pid}:
                mixed += 1
                details["new_other"].append((pid, c))
                break
        if (locs and not (locs & set(owners)) and len(new_locs) == 1
                and not (held_by[next(iter(new_locs))] - {pid})):
            created_ok += 1
    # duplicates that ended on a record holding other people's records
    dup_mixed = sum(1 for k in details["dup"] if held_by[loc[k]] - {tr[k]["person_id"]})

    # ---- print
    order = (["none"] + CORRUPTIONS
             + ["(two corruptions)", "[update has NHS no.]", "[no NHS no.]", "ALL"])
    hdr = (f"{'corruption':<20} {'n':>6} {'correct':>7} {'wrong':>5} {'dup':>5} {'review':>6} "
           f"{'dlq':>4} {'lost':>4} {'precision':>9} {'dup%':>7} {'review%':>7}")
    P("")
    P("Updates about children already indexed (dwp + school), by corruption:")
    P(hdr)
    P("-" * len(hdr))
    for b in order:
        s = stats.get(b)
        if not s:
            continue
        placed = s["correct"] + s["wrong"]
        P(f"{b:<20} {s['n']:6d} {s['correct']:7d} {s['wrong']:5d} {s['dup']:5d} "
          f"{s['review']:6d} {s['dlq']:4d} {s['lost']:4d} {pct(s['correct'], placed):>9} "
          f"{pct(s['dup'], s['n']):>7} {pct(s['review'], s['n']):>7}")
    a = stats["ALL"]
    if a["also_in_review_or_dlq"]:
        P(f"  note: {a['also_in_review_or_dlq']:d} such updates are in the export "
          "AND in review/dlq")
    if a["on_merged_record"]:
        P(f"  note: {a['on_merged_record']:d} of the 'correct' ones are on a child record that "
          "holds the pds records of more than one person (initial-load merge)")
    P(f"  reviews of existing-child updates: {dict(review_has_truth)}")
    P("  duplicates that landed on a new record also holding another person's records: "
      f"{dup_mixed:d}")
    if stats.get("UNANCHORED"):
        u = dict(stats["UNANCHORED"])
        u_n = u.pop("n")
        P(f"  not scored above: {u_n:d} updates about children whose own pds record is on no "
          f"child record (initial load parked it): {u}")
    s = stats["NEW"]
    P("")
    P(f"Updates about new children (not yet indexed): {s['n']:d} records about "
      f"{len(newp):d} children")
    P(f"  on a new record {s['on_new_record']:d}, "
      f"linked to an existing child {s['linked_to_existing']:d}, review {s['review']:d}, "
      f"dlq {s['dlq']:d}, lost {s['lost']:d}")
    P(f"  children created exactly once and alone: {created_ok:d} / {len(newp):d} "
      f"({pct(created_ok, len(newp))}); split over >1 new record: {split:d}; "
      f"sharing a record with another person: {mixed:d}")
    P("")
    P(f"All feed updates: {n_updates:d}; sent to review: {review_total:d} "
      f"({pct(review_total, n_updates)}) by reason {dict(review_reasons)}; "
      f"dead-lettered: {dlq_total:d} ({pct(dlq_total, n_updates)}) by reason {dict(dlq_reasons)}")
    P(f"Review items in total (incl. initial load): {len(reviews):d}; "
      f"dead letters in total: {len(dlqs):d}")
    P("")
    # Every automatic link that is wrong counts against precision: a feed update on
    # another child's record, an update about a new child linked to an indexed one,
    # and a pds record of the initial load merged into another child's record.
    merges = sum(len(g) - 1 for g in merged_groups)
    wrong = a["wrong"] + stats["NEW"]["linked_to_existing"] + merges
    right = a["correct"]
    placed = right + wrong
    prec = right / placed if placed else 0
    dupr = a["dup"] / a["n"] if a["n"] else 0
    revr = review_total / n_updates if n_updates else 0
    P("Against the contract's targets:")
    # Verdicts on the figures as printed (two decimals), so that the two never disagree.
    prec_verdict = "MET" if round(100 * prec, 2) >= 99.9 else "NOT MET"
    dup_verdict = "MET" if round(100 * dupr, 2) <= 0.5 else "NOT MET"
    rev_verdict = "MET" if round(100 * revr, 2) <= 3 else "NOT MET"
    P(f"  auto-link precision  {pct(right, placed):>8}   target >= 99.9%  {prec_verdict}"
      f"   ({placed:,} links, {wrong:d} wrong)")
    P(f"  duplicates           {pct(a['dup'], a['n']):>8}   target <=  0.5%  {dup_verdict}")
    P(f"  review               {pct(review_total, n_updates):>8}   target <=  3%    {rev_verdict}")
    wrong_by = collections.Counter()
    for k in details["wrong"]:
        wrong_by["+".join(tr[k]["corruptions"]) or "none"] += 1
    P(f"  wrong links: {wrong:d} (feed {dict(wrong_by)}; new children linked to indexed ones"
      f" {stats['NEW']['linked_to_existing']:d}; initial-load merges {merges:d})")
    return {"loc": loc, "rev": rev, "dlq": dlq, "owners": owners, "anchor": anchor,
            "details": details, "tr": tr, "held_by": held_by, "child_rows": child_rows}


def fmt_child(c):
    if c is None:
        return {}
    a = c.get("address") or {}
    return {
        "nhs": c.get("nhs_number"),
        "given": c.get("given_name"),
        "family": c.get("family_name"),
        "former": ",".join(c.get("former_family_names") or []) or "-",
        "dob": c.get("date_of_birth"),
        "sex": c.get("sex"),
        "address": "; ".join((a.get("lines") or []) + [a.get("town") or ""]) if a else None,
        "postcode/la": f"{a.get('postcode')} / {a.get('la')}" if a else None,
        "carers": ", ".join(x.get("name", "") for x in c.get("carers") or []),
    }


def side_by_side(cols):
    """cols: list of (title, dict)."""
    fields = ["nhs", "given", "family", "former", "dob", "sex", "address", "postcode/la", "carers"]
    w = [14] + [max(len(t), 30) for t, _ in cols]
    lines = ["    " + f"{'':<14}"
             + "".join(f" | {t:<{w[i + 1]}}" for i, (t, _) in enumerate(cols))]
    for f in fields:
        vals = [str(d.get(f)) if d else "" for _, d in cols]
        mark = " " if len(set(vals)) <= 1 else "*"
        lines.append(f"   {mark}{f:<14}"
                     + "".join(f" | {v[:44]:<{w[i + 1]}}" for i, v in enumerate(vals)))
    return "\n".join(lines)


def print_details(res, persons, updates, P, r: random.Random, nsample=10):
    d, tr, loc, owners = res["details"], res["tr"], res["loc"], res["owners"]

    def header(key):
        t = tr[key]
        p = persons[t["person_id"]]
        kind = "existing" if t["existing"] else p.get("new_kind", "new")
        corruptions = "+".join(t["corruptions"]) or "none"
        return (f"{key[0]}/{key[1]}  about person {t['person_id']:d} ({kind})  "
                f"corruptions={corruptions}")

    merged = [sorted(v) for v in owners.values() if len(v) > 1]
    if merged:
        P("")
        P("=" * 100)
        P(f"INITIAL LOAD (pds) merges: {len(merged):d} child records hold the pds records of "
          "more than one person")
        for grp in merged:
            cid = res["anchor"][grp[0]]
            p0 = persons[grp[0]]
            rel = []
            for o in grp[1:]:
                if persons[o]["family_id"] == p0["family_id"]:
                    how = "same family" + (" (twin)" if p0.get("twin_of") == o else "")
                else:
                    how = "unrelated"
                rel.append(f"person {o:d}: {how}")
            row = res["child_rows"].get(cid, {})
            row_child = row.get("child") or {}
            row_sources = [(x.get("source"), x.get("source_record_id"))
                           for x in row.get("sources") or []]
            P(f"- child {cid} holds {grp}; relation to person {grp[0]:d}: {'; '.join(rel)}; "
              f"export child: given={row_child.get('given_name')!r} "
              f"family={row_child.get('family_name')!r} dob={row_child.get('date_of_birth')!r} "
              f"sources={row_sources}")
            P(side_by_side([(f"pds record (person {o:d})", fmt_child(persons[o]["child"]))
                            for o in grp]))
    pds_parked = ([k for k in res["rev"] if k[0] == "pds"]
                  + [k for k in res["dlq"] if k[0] == "pds"])
    if pds_parked:
        P("")
        P("=" * 100)
        P(f"INITIAL LOAD (pds) records parked in review/dlq: {len(pds_parked):d} "
          "(up to 10 shown)")
        for key in sorted(pds_parked)[:10]:
            t = tr[key]
            cols = [(f"pds record (person {t['person_id']:d})", fmt_child(updates[key]["child"]))]
            extra = ""
            if key in res["rev"]:
                it = res["rev"][key][0]
                cands = it.get("candidates") or []
                cand_owners = [(sorted(owners.get(cd.get("child_id"), set())), cd.get("score"))
                               for cd in cands]
                extra = f"  reason={it.get('reason')} candidates={cand_owners}"
                for cd in cands[:1]:
                    for o in sorted(owners.get(cd.get("child_id"), set()))[:1]:
                        po, pt = persons[o], persons[t["person_id"]]
                        rel = (("same family" + (" (twin)" if pt.get("twin_of") == o else ""))
                               if po["family_id"] == pt["family_id"] else "unrelated")
                        extra += f"  top candidate person {o:d}: {rel}"
                        cols.append((f"top candidate (person {o:d})", fmt_child(po["child"])))
            else:
                dd = res["dlq"][key][0]
                extra = f"  dlq reason={dd.get('reason')} error={dd.get('error')}"
            P(f"- {key[0]}/{key[1]}{extra}")
            P(side_by_side(cols))
    P("")
    P("=" * 100)
    P(f"WRONG LINKS (all {len(d['wrong']):d})")
    for key in d["wrong"]:
        t = tr[key]
        c = loc[key]
        others = sorted(owners[c])
        rel = []
        for o in others:
            po, pt = persons[o], persons[t["person_id"]]
            if po["family_id"] == pt["family_id"]:
                twin = " (twin)" if pt.get("twin_of") == o else ""
                rel.append(f"person {o:d} is in the same family{twin}")
            else:
                rel.append(f"person {o:d} is unrelated")
        P("- " + header(key)
          + f"  -> placed on child {c} holding pds record of person(s) {others}; {'; '.join(rel)}")
        cols = [("update", fmt_child(updates[key]["child"])),
                (f"truth (person {t['person_id']:d})",
                 fmt_child(persons[t["person_id"]]["child"]))]
        for o in others[:1]:
            cols.append((f"linked-to (person {o:d})", fmt_child(persons[o]["child"])))
        P(side_by_side(cols))
    for title, keys in (
            ("DUPLICATES (updates about indexed children that made a new record)", d["dup"]),
            ("REVIEWS (updates about indexed children sent to review)", d["review"])):
        sample = keys if len(keys) <= nsample else r.sample(keys, nsample)
        P("")
        P("=" * 100)
        P(f"{title}: {len(keys):d} in all, sample of {len(sample):d}")
        for key in sorted(sample):
            t = tr[key]
            extra = ""
            if key in res["rev"]:
                it = res["rev"][key][0]
                cands = []
                for cd in it.get("candidates") or []:
                    cid = cd.get("child_id")
                    who = sorted(owners.get(cid, set())) or sorted(res["held_by"].get(cid, set()))
                    cands.append(f"{str(cid)[:8]}(persons {who}, score {cd.get('score')})")
                truth_child = str(res["anchor"].get(t["person_id"]))[:8]
                extra = (f"  reason={it.get('reason')} candidates=[{', '.join(cands)}] "
                         f"truth child={truth_child}")
            P("- " + header(key) + extra)
            P(side_by_side([("update", fmt_child(updates[key]["child"])),
                            (f"truth (person {t['person_id']:d})",
                             fmt_child(persons[t["person_id"]]["child"]))]))
    for title, keys in (("DEAD-LETTERED feed updates", d["dlq"]),
                        ("LOST feed updates (nowhere)", d["lost"]),
                        ("NEW children's updates linked to an existing child", d["new_wrong"])):
        if not keys:
            continue
        P("")
        P("=" * 100)
        P(f"{title}: {len(keys):d} (up to 10 shown)")
        for key in keys[:10]:
            t = tr[key]
            extra = ""
            if key in res["dlq"]:
                dd = res["dlq"][key][0]
                extra = f"  reason={dd.get('reason')} error={dd.get('error')}"
            if key in loc and loc[key] in owners:
                extra = f"  -> on child holding pds of person(s) {sorted(owners[loc[key]])}"
            P("- " + header(key) + extra)
            cols = [("update", fmt_child(updates[key]["child"])),
                    (f"truth (person {t['person_id']:d})",
                     fmt_child(persons[t["person_id"]]["child"]))]
            if key in loc and loc[key] in owners:
                o = sorted(owners[loc[key]])[0]
                cols.append((f"linked-to (person {o:d})", fmt_child(persons[o]["child"])))
            P(side_by_side(cols))


# --------------------------------------------------------------------------
# Contract checks on what we observed
# --------------------------------------------------------------------------

def check_shapes(export_rows, reviews, dlqs, P):
    problems = []
    exp_keys = {"child_id", "version", "shielded", "shielding_authority", "sources", "child"}
    for row in export_rows[:50]:
        missing = exp_keys - set(row)
        if missing:
            problems.append(f"export line lacks {sorted(missing)}: {json.dumps(row)[:200]}")
            break
    rev_keys = {"id", "reason", "source", "source_record_id", "candidates", "received_at"}
    for row in reviews[:50]:
        missing = rev_keys - set(row)
        if missing:
            problems.append(f"review line lacks {sorted(missing)}: {json.dumps(row)[:200]}")
            break
        for c in row.get("candidates") or []:
            if set(c) < {"child_id", "score"}:
                problems.append(f"review candidate lacks child_id/score: {c}")
                break
    dlq_keys = {"id", "reason", "source", "source_record_id", "error", "received_at"}
    for row in dlqs[:50]:
        missing = dlq_keys - set(row)
        if missing:
            problems.append(f"dlq line lacks {sorted(missing)}: {json.dumps(row)[:200]}")
            break
    return problems


def run_probes(hub: Hub, outdir: str, P):
    """Cheap command-line probes of the contract, run AFTER the measurement."""
    notes = []

    def expect(desc, args, want_rc, env_extra=None, want_stdout=None):
        rc, out, err = hub(*args, env_extra=env_extra, timeout=300, quiet=True)
        err_lines = [ln for ln in err.splitlines() if ln.strip()]
        ok = rc == want_rc
        tb = "Traceback" in err
        mismatch = "" if ok else "  <-- MISMATCH"
        traceback = "  <-- TRACEBACK" if tb else ""
        line = (f"probe {desc:<52} rc={rc:d} (want {want_rc:d}){mismatch}{traceback}  "
                f"stderr={err.strip()[:300]!r}")
        P(line)
        if not ok or tb or (want_rc != 0 and len(err_lines) != 1):
            notes.append({"cmd": "hub " + " ".join(args), "env": env_extra, "rc": rc,
                          "stdout": out[:500], "stderr": err[:1500]})
        return rc, out, err

    P("")
    P("Command-line probes (after the measurement):")
    expect("unknown command", ["no-such-command"], 2)
    expect("publish without --format/FILE", ["publish", "--source", "dwp"], 2)
    expect("wait --timeout not-a-number", ["wait", "--timeout", "soon"], 2)
    expect("publish unreadable file", ["publish", "--source", "dwp", "--format", "jsonl",
                                       "/nonexistent/xbench.jsonl"], 1)
    expect("review resolve unknown id",
           ["review", "resolve", "00000000-0000-0000-0000-000000000000",
            "--create", "--by", "xbench"], 1)
    expect("shield unknown child", ["shield", "00000000-0000-0000-0000-000000000000",
                                    "--authority", "383", "--by", "xbench"], 1)
    expect("wait, broker down", ["wait", "--timeout", "5"], 1,
           env_extra={"HUB_AMQP_URL": "amqp://guest:guest@127.0.0.1:5999/xbench_none"})
    expect("export, database down", ["export"], 1,
           env_extra={"HUB_DATABASE_URL": "postgresql://postgres@127.0.0.1:5999/xbench_none"})
    # bad records: never dropped, published or dead-lettered, exit 0
    good = {"source": "dwp", "source_record_id": "XB-BAD-1", "source_version": 1, "kind": "upsert",
            "child": {"given_name": "Probe", "family_name": "Record", "date_of_birth": "2015-03-03",
                      "sex": "female"}}
    bad1 = copy.deepcopy(good)
    bad1["source_record_id"] = "XB-BAD-1"
    bad1["child"]["favourite_colour"] = "red"
    bad2 = copy.deepcopy(good)
    bad2["source_record_id"] = "XB-BAD-2"
    bad2["child"]["nhs_number"] = "9990000001"
    if nhs_valid(bad2["child"]["nhs_number"]):
        bad2["child"]["nhs_number"] = "9990000002"
    bad3 = copy.deepcopy(good)
    bad3["source_record_id"] = "XB-BAD-3"
    bad3["child"]["given_name"] = None
    bad3["child"]["family_name"] = None
    bad4 = copy.deepcopy(good)
    bad4["source_record_id"] = "XB-BAD-4"
    bad4["child"]["date_of_birth"] = "2015-02-30"
    bad5 = copy.deepcopy(good)
    bad5["source_record_id"] = "XB-BAD-5"
    bad5["source"] = "school"
    path = os.path.join(outdir, "bad.jsonl")
    with open(path, "w") as f:
        for b in (bad1, bad2, bad3, bad4, bad5):
            f.write(json.dumps(b) + "\n")
        f.write("{this is not json\n")
    rc, out, err = expect("publish file of 6 bad records",
                          ["publish", "--source", "dwp", "--format", "jsonl", path], 0)
    P(f"      publish stdout: {out.strip()[-1200:]!r}")
    hub("wait", "--timeout", "300", quiet=True)
    rc, out, err = hub("dlq", "list", "--json", quiet=True)
    rows, _ = parse_list_json(out) if rc == 0 else ([], None)
    got = [r_ for r_ in rows if (r_.get("source_record_id") or "").startswith("XB-BAD")
           or r_.get("source_record_id") is None]
    got_reasons = [(g.get("source_record_id"), g.get("reason")) for g in got]
    P(f"      dead letters for them afterwards: {len(got):d} (want 6): {got_reasons}")
    if len(got) != 6:
        got_errors = [(g.get("source_record_id"), g.get("reason"), g.get("error")) for g in got]
        notes.append({"cmd": "hub publish --source dwp --format jsonl bad.jsonl; hub wait; "
                             "hub dlq list --json",
                      "rc": rc,
                      "stdout": f"dead letters for the 6 bad records: {len(got):d}: {got_errors}",
                      "stderr": ""})
    return notes


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--rate", type=float, default=0.30, help="share of updates about existing "
                    "children carrying a corruption")
    ap.add_argument("--double", type=float, default=0.25,
                    help="share of corrupted updates with two")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hub", default=HUB_DEFAULT)
    ap.add_argument("--out", default=None)
    ap.add_argument("--wait-timeout", type=int, default=900)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-probes", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the scratch db/vhost (debugging)")
    ap.add_argument("--generate-only", action="store_true")
    args = ap.parse_args()

    t_start = time.time()
    tag = "xbench_" + secrets.token_hex(4)
    outdir = args.out or os.path.join("/tmp/xbench", f"run-{tag}")
    os.makedirs(outdir, exist_ok=True)
    summary_lines = []

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    def P(msg=""):
        summary_lines.append(msg)
        print(msg, flush=True)

    # our own signals -> run the finally block
    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum:d}")
    signal.signal(signal.SIGTERM, on_signal)

    t0 = time.time()
    persons, truth, updates, paths, gen = build_dataset(args.n, args.rate, args.double,
                                                        args.seed, outdir)
    t_gen = time.time() - t0
    n_feed = sum(1 for t in truth if t["source"] != "pds")
    n_corr = sum(1 for t in truth if t["corruptions"])
    n_old = sum(1 for t in truth if t["source"] != "pds" and t["existing"])
    log(f"generated {args.n:d} pds + {n_feed:d} feed records ({n_old:d} about indexed children, "
        f"{n_corr:d} corrupted) in {t_gen:.1f}s -> {outdir}")

    if args.generate_only:
        return 0
    db_url = f"postgresql://postgres@127.0.0.1:5432/{tag}"
    amqp_url = f"amqp://guest:guest@127.0.0.1:5672/{tag}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({"HUB_DATABASE_URL": db_url, "HUB_AMQP_URL": amqp_url})
    hub = Hub(args.hub, env, outdir, log)
    runner = None
    runner_log = None
    timings = {}
    contract_notes = []
    vhost_made = False
    try:
        sh(["rabbitmqctl", "-q", "add_vhost", tag])
        vhost_made = True
        sh(["rabbitmqctl", "-q", "set_permissions", "-p", tag, "guest", ".*", ".*", ".*"])
        log(f"scratch vhost and database: {tag}")

        def step(name, *a, want=0, **kw):
            t = time.time()
            rc, out, err = hub(*a, **kw)
            timings[name] = timings.get(name, 0) + time.time() - t
            if rc != want:
                raise RuntimeError(f"hub {' '.join(a)} exited {rc:d}: {err.strip()[-800:]}")
            return out, err

        step("setup", "setup")
        run_args = ["run"] + (["--workers", str(args.workers)] if args.workers else [])
        runner_log = open(os.path.join(outdir, "hub-run.log"), "w")
        runner = subprocess.Popen([args.hub, *run_args], env=env, stdout=runner_log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        t_run_started = time.time()

        def wait_drained(name):
            t = time.time()
            rc, out, err = hub("wait", "--timeout", str(args.wait_timeout),
                               timeout=args.wait_timeout + 120)
            timings[name] = time.time() - t
            if rc != 0:
                raise RuntimeError(f"hub wait exited {rc:d} after {timings[name]:.0f}s: "
                                   f"{err.strip()[-500:]}")
            if runner.poll() is not None:
                raise RuntimeError(f"hub run exited early with {runner.returncode}")

        out, err = step("publish pds", "publish", "--source", "pds", "--format", "jsonl",
                        paths["initial"])
        publish_out = {"pds": out.strip()}
        wait_drained("wait after pds")
        step("export after pds", "export",
             stdout_file=os.path.join(outdir, "export-initial.jsonl"))
        out, err = step("publish dwp", "publish", "--source", "dwp", "--format", "jsonl",
                        paths["dwp"])
        publish_out["dwp"] = out.strip()
        out, err = step("publish school", "publish", "--source", "school", "--format", "jsonl",
                        paths["school"])
        publish_out["school"] = out.strip()
        wait_drained("wait after feeds")
        t_pipeline = time.time() - t_run_started
        step("export", "export", stdout_file=os.path.join(outdir, "export.jsonl"))
        rev_out, _ = step("review list", "review", "list", "--json")
        dlq_out, _ = step("dlq list", "dlq", "list", "--json")
        with open(os.path.join(outdir, "review.jsonl"), "w") as f:
            f.write(rev_out)
        with open(os.path.join(outdir, "dlq.jsonl"), "w") as f:
            f.write(dlq_out)

        export_rows, bad_export = read_jsonl(os.path.join(outdir, "export.jsonl"))
        export_initial, _ = read_jsonl(os.path.join(outdir, "export-initial.jsonl"))
        reviews, rev_fmt = parse_list_json(rev_out)
        dlqs, dlq_fmt = parse_list_json(dlq_out)

        P(f"xbench: N={args.n:d}, corruption rate={100 * args.rate:.0f}% "
          f"(two corruptions in {100 * args.double:.0f}% of those), seed={args.seed:d}, "
          f"scratch={tag}")
        n_dwp = sum(1 for t in truth if t["source"] == "dwp")
        n_school = sum(1 for t in truth if t["source"] == "school")
        P(f"records: pds {args.n:d}; dwp {n_dwp:d}; school {n_school:d}; "
          f"feed updates about indexed children {n_old:d} "
          f"(corrupted {n_corr:d}), about new children {n_feed - n_old:d}")
        for s, o in publish_out.items():
            ol = o.splitlines()
            last = " | ".join(ol[-3:])[:400]
            P(f"publish {s:<6} stdout ({len(ol):d} lines), last: {last}")
        P(f"export after pds load: {len(export_initial):d} child records")
        if bad_export:
            P(f"export: {len(bad_export):d} lines that are not JSON, e.g. {bad_export[:2]}")
        if rev_fmt not in ("jsonl", "empty") or dlq_fmt not in ("jsonl", "empty"):
            P(f"note: review list --json format={rev_fmt}, dlq list --json format={dlq_fmt}")
        res = score(persons, truth, updates, export_rows, reviews, dlqs, P)
        shape_problems = check_shapes(export_rows, reviews, dlqs, P)
        for sp in shape_problems:
            P("SHAPE: " + sp)
            contract_notes.append({"cmd": "(output shape)", "stdout": sp})

        # stop hub run with SIGTERM
        t = time.time()
        runner.send_signal(signal.SIGTERM)
        try:
            rc = runner.wait(timeout=90)
            P("")
            P(f"hub run: SIGTERM -> exited rc={rc:d} after {time.time() - t:.1f}s")
            if rc != 0:
                run_log = open(os.path.join(outdir, "hub-run.log")).read()[-1500:]
                contract_notes.append({"cmd": "hub run (SIGTERM)", "rc": rc, "stdout": run_log})
        except subprocess.TimeoutExpired:
            P("hub run: did NOT exit within 90s of SIGTERM")
            contract_notes.append({"cmd": "hub run (SIGTERM)", "stdout": "did not exit within 90s"})
        runner_log.flush()
        with open(os.path.join(outdir, "hub-run.log")) as f:
            tail = f.read()
        if "Traceback" in tail:
            P(f"hub run log contains a traceback (see {outdir}/hub-run.log)")

        if not args.no_probes:
            # a fresh runner so that the bad records are processed into dead letters
            runner = subprocess.Popen([args.hub, *run_args], env=env, stdout=runner_log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
            contract_notes += run_probes(hub, outdir, P)
            runner.send_signal(signal.SIGTERM)
            try:
                runner.wait(timeout=90)
            except subprocess.TimeoutExpired:
                pass

        # exit codes / tracebacks seen in the main calls
        for c in hub.calls:
            if "Traceback" in c["stderr"]:
                contract_notes.append({"cmd": c["argv"], "rc": c["rc"],
                                       "stderr": c["stderr"][-1500:]})

        P("")
        step_times = "; ".join(f"{k} {v:.1f}s" for k, v in timings.items())
        P(f"timings: generate {t_gen:.1f}s; {step_times}; "
          f"pipeline (run start -> drained) {t_pipeline:.1f}s; total {time.time() - t_start:.1f}s")
        if contract_notes:
            P("")
            P("Command-line observations that differ from contract.md:")
            for n_ in contract_notes:
                P("  " + json.dumps(n_)[:2000])
        print_details(res, persons, updates,
                      lambda m: (summary_lines.append(m), print(m, flush=True)),
                      random.Random(args.seed))
        return 0
    except KeyboardInterrupt as e:
        P(f"interrupted: {e}")
        return 130
    except Exception as e:
        P(f"FAILED: {type(e).__name__}: {e}")
        for c in hub.calls[-3:]:
            P(f"  last call: {c['argv']} rc={c['rc']:d} stderr={c['stderr'][-600:]!r}")
        return 1
    finally:
        if runner is not None and runner.poll() is None:
            runner.send_signal(signal.SIGTERM)
            try:
                runner.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(runner.pid, signal.SIGKILL)   # our own process group only
                runner.wait()
        if runner_log:
            runner_log.close()
        if not args.keep:
            if vhost_made:
                p = sh(["rabbitmqctl", "-q", "delete_vhost", tag], check=False)
                log(f"deleted vhost {tag} (rc={p.returncode:d})")
            p = sh(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-c",
                    f'DROP DATABASE IF EXISTS "{tag}" WITH (FORCE)'], check=False)
            log(f"dropped database {tag} (rc={p.returncode:d} {p.stderr.strip()})")
        with open(os.path.join(outdir, "summary.txt"), "w") as f:
            f.write("\n".join(summary_lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
