"""The demo's data: a São Paulo hotel and a school, their tariff, extensions, lines and a month of calls.

Everything here is plain data computed from the day the demo runs, deterministic for that day:
the same records are sent again on a second run, and the collector's deterministic record ids
turn them into duplicates, so nothing is counted twice.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from tarifa_collector.fake_ipoffice import smdr_line

TENANT = "demo"
TIME_ZONE = "America/Sao_Paulo"
HOME_AREA_CODE = "11"
PLAN_CODE = "br-standard"

HOTEL = "Hotel Paulista Ltda"
SCHOOL = "Escola Municipal Aurora"
INTERNAL = "Tarifa Demo — TI interna"

# destination, prefixes, class, price/min, reduced price/min, connect fee, cost/min, first increment,
# next increment, minimum charge, free seconds, free inclusive: the Brazilian conventions as parameters.
TARIFF_COLUMNS = (
    "destination,prefixes,call_class,price_per_minute,reduced_price_per_minute,connect_fee,cost_per_minute,"
    "first_increment,next_increment,minimum_charge,free_seconds,free_inclusive"
)
TARIFF_CSV = (
    TARIFF_COLUMNS
    + """
Local fixo,,local,0.10,0.05,0.00,0.04,30,6,0,3,false
Móvel VC1,,vc1,0.49,0.35,0.00,0.20,30,6,0,3,false
Móvel VC2,,vc2,0.89,0.69,0.00,0.40,30,6,0,3,false
Móvel VC3,,vc3,0.99,0.79,0.00,0.45,30,6,0,3,false
Longa distância (DDD),,long_distance,0.35,0.20,0.00,0.12,30,6,0,3,false
Internacional,,international,2.50,2.00,0.10,1.10,30,6,0,3,false
Portugal,351,international,1.90,1.50,0.10,0.80,30,6,0,3,false
EUA e Canadá,1,international,0.90,0.70,0.10,0.30,30,6,0,3,false
0800,,toll_free,0.00,0.00,0.00,0.00,30,6,0,3,false
Serviços de utilidade pública,,service,0.00,0.00,0.00,0.00,30,6,0,3,false
"""
)

# Numbers as a PBX in São Paulo (DDD 11) dials them; the comment is the class the rater gives.
DESTINATIONS = {
    "local": ["33334444", "32145678", "25551234"],
    "vc1": ["987654321", "991234567"],
    "vc2": ["01519987654321", "01513991230000"],  # carrier 15, DDD 19 / 13: same first digit as 11
    "vc3": ["01521987654321", "01531988887777"],  # DDD 21 / 31
    "long_distance": ["0152125551234", "0154133334444"],
    "international": ["0021351213456789", "002112125550100", "0021442079460000"],
    "toll_free": ["08007771234"],
}


@dataclass(frozen=True, slots=True)
class Extension:
    number: str
    customer: str
    cost_centre: str
    department: str
    allowed_classes: list[str] | None = None


EXTENSIONS = [
    # The front desk may call local, VC1, 0800 and services only: its international call is out of class.
    Extension("201", HOTEL, "Recepção", "front desk", ["local", "vc1", "toll_free", "service", "internal"]),
    Extension("202", HOTEL, "Gerência", "management"),
    Extension("203", HOTEL, "Restaurante", "food and beverage"),
    Extension("204", HOTEL, "Eventos", "events"),
    Extension("205", HOTEL, "Gerência", "management"),
    Extension("301", SCHOOL, "Secretaria", "office"),
    Extension("302", SCHOOL, "Diretoria", "board"),
    Extension("401", INTERNAL, "TI", "it"),
]


@dataclass(frozen=True, slots=True)
class Customer:
    name: str
    body: dict[str, object]
    charges: list[dict[str, object]]


def customers(period_start: date) -> list[Customer]:
    """Three customers: a taxed hotel (UBL), a tax-exempt school (EDIFACT), an internal one never billed."""
    month_ago = period_start
    return [
        Customer(
            HOTEL,
            {
                "name": HOTEL,
                "tax_id": "BR11222333000181",
                "street": "Av. Paulista 1500",
                "city": "São Paulo",
                "postcode": "01310-100",
                "country": "BR",
                "emails": ["financeiro@hotel-paulista.example"],
                "billable": True,
                "tax_treatment": "default",
                "language": "pt",
                "edi_format": "ubl",
                "gln": gln("789123450001"),
            },
            [
                {"description": "Aluguel do PABX", "amount": "199.90", "recurring": True, "starts_on": str(month_ago)},
                {
                    "description": "Instalação de ramais",
                    "amount": "350.00",
                    "recurring": False,
                    "starts_on": str(month_ago + timedelta(days=4)),
                },
            ],
        ),
        Customer(
            SCHOOL,
            {
                "name": SCHOOL,
                "tax_id": "BR44555666000172",
                "street": "Rua das Flores 45",
                "city": "São Paulo",
                "postcode": "04001-000",
                "country": "BR",
                "emails": ["secretaria@escola-aurora.example"],
                "billable": True,
                "tax_treatment": "exempt",
                "language": "pt",
                "edi_format": "edifact",
                "gln": gln("789123450002"),
            },
            [
                {"description": "Tronco SIP", "amount": "89.90", "recurring": True, "starts_on": str(month_ago)},
                {
                    "description": "Aparelho IP",
                    "amount": "120.00",
                    "recurring": False,
                    "starts_on": str(month_ago + timedelta(days=9)),
                },
            ],
        ),
        Customer(
            INTERNAL,
            {
                "name": INTERNAL,
                "street": "Av. Paulista 1000",
                "city": "São Paulo",
                "postcode": "01310-000",
                "country": "BR",
                "emails": ["ti@tarifa-demo.example"],
                "billable": False,
                "edi_format": "none",
            },
            [{"description": "Rateio interno", "amount": "50.00", "recurring": True, "starts_on": str(month_ago)}],
        ),
    ]


def gln(first_twelve: str) -> str:
    """A GS1 GLN: twelve digits and the mod-10 check digit (weights 3 and 1 from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(first_twelve)))
    return first_twelve + str((10 - total % 10) % 10)


SELLER_GLN = gln("789123450000")


def billing_profile() -> dict[str, object]:
    return {
        "seller_name": "Tarifa Demo Telecom Ltda",
        "seller_vat_id": "BR12345678000195",
        "seller_street": "Av. Paulista 1000",
        "seller_city": "São Paulo",
        "seller_postcode": "01310-000",
        "seller_country": "BR",
        "seller_endpoint": f"0088:{SELLER_GLN}",
        "seller_gln": SELLER_GLN,
        "default_tax_rate": "9.25",
        "currency": "BRL",
        "series": "NF",
        "credit_series": "NC",
        "time_zone": TIME_ZONE,
    }


# --- Summit: partitions, catalogue, lines ----------------------------------------------------

PARTITIONS = [
    {
        "code": "SP-CAPITAL",
        "description": "São Paulo capital (bloqueio por inadimplência)",
        "blocking_enabled": True,
        "default_category": "LIVRE",
        "block_category": "BLOQ",
        "partial_block_category": "PARC",
        "cancellation_category": "CANC",
    },
    {
        "code": "RJ",
        "description": "Rio de Janeiro (sem bloqueio)",
        "blocking_enabled": False,
        "default_category": "LIVRE",
        "extra_categories": ["LOCAL"],
    },
]
CATALOGUE = {
    "categories": [
        ("LIVRE", "Livre"),
        ("BLOQ", "Bloqueio"),
        ("PARC", "Bloqueio parcial"),
        ("CANC", "Cancelado"),
        ("LOCAL", "Somente local"),
    ],
    "licences": [("BASIC", "Básica")],
    "plans": [("FIXO-100", "Fixo 100 minutos")],
    "cost-centres": [("Default", ""), ("Secretaria", ""), ("Diretoria", "")],
}
NUMBER_RANGE = {"name": "São Paulo 3000", "prefix": "5511", "first": "30000000", "last": "30000099"}


@dataclass(frozen=True, slots=True)
class SipLine:
    customer: str
    number: str
    extension: str
    partition: str
    cost_centre: str
    dids: tuple[str, ...]


SIP_LINES = [
    SipLine(SCHOOL, "+551130000001", "301", "SP-CAPITAL", "Secretaria", ("+551130000010",)),
    SipLine(SCHOOL, "+551130000002", "302", "SP-CAPITAL", "Diretoria", ("+551130000011", "+551130000012")),
    SipLine(HOTEL, "+551130000003", "206", "RJ", "Default", ()),
]


# --- calls -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PbxCall:
    """One call on the hotel's IP Office, as the story tells it."""

    start: datetime  # PBX local time, no zone
    extension: str
    dialled: str
    talk_seconds: int
    ring_seconds: int = 6
    inbound: bool = False
    transferred_to: str | None = None
    note: str = ""


def previous_month(today: date) -> tuple[date, date]:
    """The first day of the month before `today`'s and the first day of `today`'s month."""
    this_month = today.replace(day=1)
    return (this_month - timedelta(days=1)).replace(day=1), this_month


def pbx_calls(today: date, now_hour: int) -> list[PbxCall]:
    """About seventy calls of the hotel in the previous month, the special cases, and three of today."""
    start, end = previous_month(today)
    rng = random.Random(start.toordinal())  # same month, same calls
    days = (end - start).days
    calls: list[PbxCall] = []
    weights = {"local": 8, "vc1": 6, "vc2": 2, "vc3": 2, "long_distance": 3, "international": 1, "toll_free": 1}
    classes = [name for name, weight in weights.items() for _ in range(weight)]
    for _ in range(60):
        day = start + timedelta(days=rng.randrange(days))
        hour, minute, second = rng.randrange(7, 23), rng.randrange(60), rng.randrange(60)
        moment = datetime(day.year, day.month, day.day, hour, minute, second)  # noqa: DTZ001 - PBX wall clock
        call_class = rng.choice(classes)
        extension = rng.choice(["202", "203", "204", "205"])
        calls.append(PbxCall(moment, extension, rng.choice(DESTINATIONS[call_class]), rng.randrange(20, 900)))
    first = datetime(start.year, start.month, start.day)  # noqa: DTZ001 - PBX wall clock
    calls += [
        PbxCall(first + timedelta(days=2, hours=10, minutes=5), "202", "0021351213456789", 754, note="international"),
        PbxCall(
            first + timedelta(days=3, hours=15, minutes=20),
            "201",
            "002112125550100",
            312,
            note="international from the front desk: outside its class of service",
        ),
        PbxCall(first + timedelta(days=5, hours=9), "203", "33334444", 2, note="under 3 seconds: free"),
        PbxCall(first + timedelta(days=6, hours=11), "204", "987654321", 0, ring_seconds=25, note="unanswered"),
        PbxCall(
            first + timedelta(days=8, hours=14, minutes=30),
            "202",
            "01521987654321",
            95,
            transferred_to="205",
            note="transferred from 202 to 205: one call, both legs' talk time",
        ),
        PbxCall(first + timedelta(days=9, hours=16), "201", "11987650000", 180, inbound=True, note="inbound"),
        PbxCall(first + timedelta(days=12, hours=22, minutes=15), "203", "01519987654321", 400, note="reduced band"),
    ]
    hour = 9 if now_hour >= 10 else 0  # calls of today that have already ended
    today_start = datetime(today.year, today.month, today.day, hour)  # noqa: DTZ001 - PBX wall clock
    calls += [
        PbxCall(today_start + timedelta(minutes=2), "202", "32145678", 240, note="today"),
        PbxCall(today_start + timedelta(minutes=17), "204", "991234567", 95, note="today"),
        PbxCall(today_start + timedelta(minutes=31), "205", "0021442079460000", 600, note="today"),
    ]
    return calls


def smdr_records(calls: list[PbxCall]) -> list[bytes]:
    """The IP Office SMDR records of the calls: one per leg, CRLF ended, as the PBX writes them."""
    records: list[bytes] = []
    for index, call in enumerate(calls):
        call_id = int(call.start.strftime("%y%m%d")) * 1000 + index
        stamp = call.start.strftime("%Y/%m/%d %H:%M:%S")
        if call.inbound:
            records.append(
                smdr_line(
                    call_id,
                    start=stamp,
                    connected=_hms(call.talk_seconds),
                    ring=call.ring_seconds,
                    caller=call.dialled,
                    direction="I",
                    dialled=call.extension,
                    party1=f"E{call.extension}",
                    party2="T9001",
                )
            )
            continue
        if call.transferred_to is None:
            records.append(_outbound(call, call_id, stamp, call.talk_seconds, call.extension, continuation=0))
            continue
        first_leg = call.talk_seconds // 3
        records.append(_outbound(call, call_id, stamp, first_leg, call.extension, continuation=1))
        second = (call.start + timedelta(seconds=call.ring_seconds + first_leg)).strftime("%Y/%m/%d %H:%M:%S")
        records.append(
            _outbound(call, call_id, second, call.talk_seconds - first_leg, call.transferred_to, continuation=0)
        )
    return records


def _outbound(call: PbxCall, call_id: int, stamp: str, talk: int, extension: str, *, continuation: int) -> bytes:
    return smdr_line(
        call_id,
        start=stamp,
        connected=_hms(talk),
        ring=call.ring_seconds,
        caller=extension,
        direction="O",
        dialled=call.dialled,
        continuation=continuation,
        party1=f"E{extension}",
        party2="T9001",
    )


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def asterisk_master_csv(today: date) -> str:
    """The school's Asterisk `cdr_csv` Master.csv for the previous month (16 columns + uniqueid, userfield)."""
    start, _ = previous_month(today)
    return _master_csv(start, SCHOOL_CALLS)


def asterisk_sample_csv(today: date) -> str:
    """A file for the user to import by hand (`tarifa collector import`): the school's calls of this month."""
    return _master_csv(today.replace(day=1), SAMPLE_CALLS)


# (src, dst, day, hour, minute, billsec); billsec 0 is an unanswered call.
SCHOOL_CALLS = [
    ("301", "33334444", 2, 10, 0, 184),
    ("301", "987654321", 3, 14, 30, 75),
    ("302", "0152125551234", 4, 9, 15, 620),
    ("302", "991234567", 7, 11, 45, 33),
    ("301", "08007771234", 10, 8, 0, 240),
    ("302", "01521987654321", 14, 16, 20, 410),
    ("301", "32145678", 17, 13, 5, 0),  # NO ANSWER
    ("302", "0021351213456789", 21, 10, 40, 95),
    ("301", "25551234", 23, 19, 10, 1),
    ("302", "987654321", 25, 21, 30, 300),
]
SAMPLE_CALLS = [
    ("301", "33334444", 1, 8, 10, 95),
    ("302", "01521987654321", 1, 8, 40, 260),
    ("301", "0021351213456789", 1, 9, 5, 140),
]


def _master_csv(start: date, rows: list[tuple[str, str, int, int, int, int]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for index, (src, dst, day, hour, minute, billsec) in enumerate(rows):
        began = datetime(start.year, start.month, day, hour, minute)  # noqa: DTZ001 - Asterisk writes local time
        answered = began + timedelta(seconds=5)
        ended = answered + timedelta(seconds=billsec)
        disposition = "ANSWERED" if billsec else "NO ANSWER"
        writer.writerow(
            [
                "",
                src,
                dst,
                "from-internal",
                f'"Ramal {src}" <{src}>',
                f"SIP/{src}-{index:08x}",
                f"SIP/trunk-{index + 100:08x}",
                "Dial",
                f"SIP/trunk/{dst},60",
                began.strftime("%Y-%m-%d %H:%M:%S"),
                answered.strftime("%Y-%m-%d %H:%M:%S") if billsec else "",
                ended.strftime("%Y-%m-%d %H:%M:%S"),
                str(billsec + 5),
                str(billsec),
                disposition,
                "DOCUMENTATION",
                f"{began:%Y%m%d%H%M}.{index}",
                "",
            ]
        )
    return out.getvalue()


ASTERISK_CALLS = 10
