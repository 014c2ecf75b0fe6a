"""Seeded, columnar sandbox data: the same Malaysian businesses as SkyBiz and SmartAcc would hold them.

Both emulators serve from one :class:`SandboxData`, so the pipeline meets what it meets in production: two
systems that share a part of their customers under different codes (``overlap``), written in the many ways
people type names, phones and states, with a known share of dirty records (``dirty_rate``). The ground truth
(:attr:`SandboxData.matches`, :attr:`SandboxData.defects`, :attr:`SandboxData.twin_variants`) lets tests
and the benchmark check identity resolution and normalization; the pipeline never sees it.

Everything is vectorized over numpy and pyarrow (no per-row Python), so a million customers per system take
seconds. Every random draw comes from a generator seeded by ``(seed, purpose)``, so a seed always gives the
same data and adding a column does not shift the values of the others.

Field lists and orders follow ``shared/api/SKYBIZ.md`` §4 and ``shared/api/SMARTACC.md`` §3 (the seeds).
Times are naive Malaysia (UTC+08:00) wall times, as both vendors store them.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# --- field lists (the vendor documents, in their order) ------------------------------------------------

SKYBIZ_READ_FIELDS: Final[tuple[str, ...]] = (
    "CusCode", "CusName", "Address", "AreaCode", "CurCode", "Tel", "Tel2", "Fax", "Fax2", "Email",
    "Contact", "ContactTel", "Town", "State", "Country", "PostCode", "SalesPersonCode", "CreditLimit",
    "TermCode", "StatusBadYN", "DateStart", "DOB", "Sex", "MemberType", "DateTimeModified",
)  # fmt: skip
"""The 25 fields a SkyBiz customer read returns (SKYBIZ.md §4), in order."""

SKYBIZ_CREATE_ONLY_FIELDS: Final[tuple[str, ...]] = ("AccountCode", "CategoryCode", "FinCatCode")
"""Stored by a create, never returned by a read."""

SMARTACC_FIELDS: Final[tuple[str, ...]] = (
    "AcCustomerID", "AcCustomerName", "AcTermID", "AcAreaID", "AcCusGroupID", "AcCusUDGroupID",
    "BillingAddress1", "BillingAddress2", "BillingAddress3", "BillingAddress4", "BillingTel1", "BillingTel2",
    "BillingFax1", "BillingFax2", "BillingPostalCode", "BillingContact1", "BillingContact2", "BillingEmail",
    "BillingHomePage", "IsActive", "Notes", "CreateBy", "CreateDate", "EditBy", "EditDate", "Stamp",
    "AcCustomerNickName", "DateOfBirth", "IsMember", "Gender", "MemberNo", "MobileNo", "IdentityNo",
    "MemberJoinDate", "MemberExpireDate", "MemberMarriageDate", "AcMemberEthnicID", "AcMemberIncomeID",
    "AcMemberOccupationID", "MemberPointBalance", "MemberPointAccumulated", "PriceCode", "AcSalesmanID",
    "IsGSTRegister", "GSTRegisterNumber", "BusinessRegisterNumber", "AcCurrencyID", "IsAllowPrintStatement",
    "IsAllowExceedCreditTerm", "IsAllowExceedCreditLimit", "LocalCreditLimit", "LocalBalanceAmount",
    "AcTaxID", "IsAllowCreditSalesForPOS", "MemberNotes", "AcINCardPackageID", "AcCustomerIDParentID",
    "TaxSLTRegistrationNo", "TaxSVTRegistrationNo", "AcTaxIDSST", "SSTExemptionCertNumber",
    "EInvoiceRegName", "EInvoiceRegTIN", "EInvoiceRegNumber", "EInvoiceIsMalaysian", "EInvoiceRegType",
    "EInvoiceRegNumber_NRIC", "EInvoiceRegNumber_PASSPORT", "EInvoiceRegNumber_BRN", "EInvoiceRegNumber_ARMY",
    "EInvoiceRegSSTNumber", "EInvoiceRegTourismTaxRegNumber", "EInvoiceRegEmail", "AcEInvoiceSupplierMSICID",
    "EInvoiceRegBusinessActivityDescription", "EInvoiceRegContactNumber", "EInvoiceAddressLine0",
    "EInvoiceAddressLine1", "EInvoiceAddressLine2", "EInvoiceAddressPostalZone", "EInvoiceAddressCityName",
    "AcEInvoiceAddressStateID", "AcEInvoiceAddressCountryID", "EInvoiceIsEnabledTINValidation",
    "EInvoiceIsEnabledAutoTINValidation", "EInvoiceIsTINValidateSuccess", "EInvoiceTINValidateDateTime",
    "EInvoiceTINValidateBy", "EInvoiceTINValidateRequestBody", "EInvoiceTINValidateResponseBody",
    "EInvoiceTINValidateResponseStatus", "EInvoiceTINValidateProcessLog", "EInvoiceIsNotApplicable",
)  # fmt: skip
"""The 93 AcCustomer fields (SMARTACC.md §3, the seed), in order."""

SMARTACC_DATETIME_FIELDS: Final[tuple[str, ...]] = (
    "CreateDate", "EditDate", "DateOfBirth", "MemberJoinDate", "MemberExpireDate", "MemberMarriageDate",
    "EInvoiceTINValidateDateTime",
)  # fmt: skip
SMARTACC_DECIMAL_FIELDS: Final[tuple[str, ...]] = (
    "MemberPointBalance", "MemberPointAccumulated", "LocalCreditLimit", "LocalBalanceAmount",
)  # fmt: skip

SKYBIZ_SCHEMA: Final = pa.schema(
    [
        pa.field(
            name,
            pa.float64()
            if name == "CreditLimit"
            else pa.int32()
            if name == "TermCode"
            else pa.timestamp("s")
            if name == "DateTimeModified"
            else pa.string(),
            nullable=name != "CusCode",
        )
        for name in SKYBIZ_READ_FIELDS + SKYBIZ_CREATE_ONLY_FIELDS
    ]
)
"""SkyBiz customers as stored: read fields, then create-only fields. Strings are never null (``""``)."""

SMARTACC_SCHEMA: Final = pa.schema(
    [
        pa.field(
            name,
            pa.timestamp("ms")
            if name in SMARTACC_DATETIME_FIELDS
            else pa.int64()
            if name == "Stamp"
            else pa.float64()
            if name in SMARTACC_DECIMAL_FIELDS
            else pa.string(),
            nullable=name != "AcCustomerID",
        )
        for name in SMARTACC_FIELDS
    ]
)
"""SmartAcc AcCustomer records: null string = property absent, null date = not set (MinValue)."""

SKYBIZ_CURRENCIES: Final[tuple[str, ...]] = (
    "RM", "SGD", "USD", "EUR", "GBP", "AUD", "CNY", "JPY", "THB", "IDR", "HKD", "INR", "PHP", "BND", "TWD",
    "KRW", "NZD", "CHF", "VND",
)  # fmt: skip
"""The SkyBiz currency table a create's ``CurCode`` must be in (ringgit is ``RM``)."""

TERMS: Final[tuple[tuple[str, str, int], ...]] = (
    ("CASH", "Cash", 0), ("COD", "Cash On Delivery", 0), ("C7", "7 Days", 7), ("C14", "14 Days", 14),
    ("C30", "30 Days", 30), ("C45", "45 Days", 45), ("C60", "60 Days", 60), ("C90", "90 Days", 90),
    ("C120", "120 Days", 120),
)  # fmt: skip
CUSTOMER_GROUPS: Final[tuple[tuple[str, str], ...]] = (
    ("RETAIL", "Retail"), ("WHOLESALE", "Wholesale"), ("CORPORATE", "Corporate"), ("GOVT", "Government"),
    ("DEALER", "Dealer"), ("NA", "Not Applicable"),
)  # fmt: skip
CUSTOMER_UD_GROUPS: Final[tuple[tuple[str, str], ...]] = (
    ("NA", "Not Applicable"), ("KEY", "Key Account"), ("ONLINE", "Online Customer"),
    ("WALKIN", "Walk-in Customer"), ("EXPORT", "Export"),
)  # fmt: skip

# --- Malaysia ------------------------------------------------------------------------------------------

# state, area id, e-invoice/NRIC state code, phone area (national digits without 0), subscriber length
_STATES: Final[tuple[tuple[str, str, str, str, int], ...]] = (
    ("Johor", "JHR", "01", "7", 7), ("Kedah", "KDH", "02", "4", 7), ("Kelantan", "KTN", "03", "9", 7),
    ("Melaka", "MLK", "04", "6", 7), ("Negeri Sembilan", "NSN", "05", "6", 7),
    ("Pahang", "PHG", "06", "9", 7), ("Pulau Pinang", "PNG", "07", "4", 7), ("Perak", "PRK", "08", "5", 7),
    ("Perlis", "PLS", "09", "4", 7),
    ("Selangor", "SEL", "10", "3", 8), ("Terengganu", "TRG", "11", "9", 7), ("Sabah", "SBH", "12", "88", 6),
    ("Sarawak", "SWK", "13", "82", 6), ("Kuala Lumpur", "KL", "14", "3", 8), ("Labuan", "LBN", "15", "87", 6),
    ("Putrajaya", "PJY", "16", "3", 8),
)  # fmt: skip
_STATE_INDEX: Final = {s[0]: i for i, s in enumerate(_STATES)}

# town, state, first postcode, last postcode, weight (roughly by business population)
_TOWNS: Final[tuple[tuple[str, str, int, int, int], ...]] = (
    ("Kuala Lumpur", "Kuala Lumpur", 50000, 60000, 60), ("Cheras", "Kuala Lumpur", 56000, 56100, 12),
    ("Kepong", "Kuala Lumpur", 52100, 52200, 8), ("Setapak", "Kuala Lumpur", 53000, 53300, 6),
    ("Petaling Jaya", "Selangor", 46000, 47800, 30), ("Shah Alam", "Selangor", 40000, 40470, 20),
    ("Subang Jaya", "Selangor", 47500, 47650, 15), ("Klang", "Selangor", 41000, 41300, 15),
    ("Kajang", "Selangor", 43000, 43000, 8), ("Puchong", "Selangor", 47100, 47190, 10),
    ("Seri Kembangan", "Selangor", 43300, 43300, 6), ("Rawang", "Selangor", 48000, 48100, 5),
    ("Cyberjaya", "Selangor", 63000, 63300, 3), ("Ampang", "Selangor", 68000, 68000, 6),
    ("Putrajaya", "Putrajaya", 62000, 62988, 3), ("George Town", "Pulau Pinang", 10000, 11000, 15),
    ("Butterworth", "Pulau Pinang", 12000, 13400, 8), ("Bukit Mertajam", "Pulau Pinang", 14000, 14400, 6),
    ("Bayan Lepas", "Pulau Pinang", 11900, 11960, 6), ("Johor Bahru", "Johor", 80000, 81300, 25),
    ("Batu Pahat", "Johor", 83000, 83100, 5), ("Muar", "Johor", 84000, 84200, 5),
    ("Kluang", "Johor", 86000, 86100, 4), ("Skudai", "Johor", 81300, 81300, 4),
    ("Segamat", "Johor", 85000, 85000, 2), ("Ipoh", "Perak", 30000, 31650, 12),
    ("Taiping", "Perak", 34000, 34200, 4), ("Teluk Intan", "Perak", 36000, 36000, 2),
    ("Sitiawan", "Perak", 32000, 32000, 2), ("Melaka", "Melaka", 75000, 75460, 10),
    ("Alor Gajah", "Melaka", 78000, 78000, 2), ("Seremban", "Negeri Sembilan", 70000, 70450, 8),
    ("Nilai", "Negeri Sembilan", 71800, 71800, 3), ("Port Dickson", "Negeri Sembilan", 71000, 71010, 2),
    ("Kuantan", "Pahang", 25000, 26100, 7), ("Temerloh", "Pahang", 28000, 28050, 2),
    ("Bentong", "Pahang", 28700, 28700, 1), ("Kota Bharu", "Kelantan", 15000, 16100, 5),
    ("Kuala Terengganu", "Terengganu", 20000, 21300, 4), ("Kemaman", "Terengganu", 24000, 24000, 2),
    ("Alor Setar", "Kedah", 5000, 6550, 5), ("Sungai Petani", "Kedah", 8000, 8100, 4),
    ("Kulim", "Kedah", 9000, 9000, 2), ("Kangar", "Perlis", 1000, 1000, 1),
    ("Kota Kinabalu", "Sabah", 88000, 88999, 8), ("Sandakan", "Sabah", 90000, 90999, 3),
    ("Tawau", "Sabah", 91000, 91999, 2), ("Kuching", "Sarawak", 93000, 93990, 8),
    ("Miri", "Sarawak", 98000, 98100, 3), ("Sibu", "Sarawak", 96000, 96000, 3),
    ("Bintulu", "Sarawak", 97000, 97000, 2), ("Labuan", "Labuan", 87000, 87033, 1),
)  # fmt: skip

# How people spell states when nobody checks (the dirty ``state_spelling`` defect).
_STATE_SPELLINGS: Final[dict[str, tuple[str, ...]]] = {
    "Johor": ("johor", "JOHOR", "Johor Darul Takzim", "Johore"),
    "Kedah": ("kedah", "KEDAH", "Kedah Darul Aman", "Kdh"),
    "Kelantan": ("kelantan", "KELANTAN", "Kelantan Darul Naim", "Ktn"),
    "Melaka": ("Malacca", "melaka", "MELAKA", "Melaka Bandaraya Bersejarah"),
    "Negeri Sembilan": ("N. Sembilan", "N.Sembilan", "Negri Sembilan", "NS"),
    "Pahang": ("pahang", "PAHANG", "Pahang Darul Makmur", "Phg"),
    "Pulau Pinang": ("Penang", "P. Pinang", "Pg", "PENANG"),
    "Perak": ("perak", "PERAK", "Perak Darul Ridzuan", "Prk"),
    "Perlis": ("perlis", "PERLIS", "Perlis Indera Kayangan", "Pls"),
    "Selangor": ("selangor", "SELANGOR", "Selangor Darul Ehsan", "Sel."),
    "Terengganu": ("Trengganu", "terengganu", "TERENGGANU", "Terengganu Darul Iman"),
    "Sabah": ("sabah", "SABAH", "Sabah, East Malaysia", "Sbh"),
    "Sarawak": ("sarawak", "SARAWAK", "Sarawak, East Malaysia", "Swk"),
    "Kuala Lumpur": ("KL", "W.P. Kuala Lumpur", "Wilayah Persekutuan Kuala Lumpur", "K. Lumpur"),
    "Labuan": ("W.P. Labuan", "labuan", "Wilayah Persekutuan Labuan", "LABUAN"),
    "Putrajaya": ("W.P. Putrajaya", "putrajaya", "Wilayah Persekutuan Putrajaya", "PJY"),
}

_MALAY_M: Final = (
    "Ahmad", "Muhammad", "Mohd", "Ismail", "Azman", "Hafiz", "Faizal", "Rizal", "Amirul", "Hakim",
    "Zulkifli", "Kamal", "Syafiq", "Firdaus", "Ibrahim", "Nazri", "Shahrul", "Aiman", "Haziq", "Khairul",
)  # fmt: skip
_MALAY_F: Final = (
    "Siti", "Nur", "Aisyah", "Nurul", "Farah", "Aminah", "Zainab", "Hafizah", "Noraini", "Rosnah",
    "Fatimah", "Liyana", "Nadia", "Syazwani", "Aishah", "Salmah", "Norhayati", "Izzati",
)  # fmt: skip
_MALAY_FATHER: Final = (
    "Abdullah", "Ismail", "Hassan", "Osman", "Yusof", "Ahmad", "Abdul Rahman", "Abdul Razak", "Salleh",
    "Hamid", "Ali", "Omar", "Ibrahim", "Mohamad", "Zakaria", "Sulaiman", "Othman", "Rashid",
)  # fmt: skip
_CHINESE_SURNAME: Final = (
    "Tan", "Lim", "Lee", "Ng", "Wong", "Chan", "Ong", "Teh", "Goh", "Chong", "Yap", "Low", "Koh", "Chua",
    "Liew", "Khoo", "Cheah", "Loh", "Yeoh", "Foo", "Ho", "Leong", "Chin", "Soh",
)  # fmt: skip
_CHINESE_GIVEN_M: Final = (
    "Ah Kow", "Wei Ming", "Chee Keong", "Kok Wai", "Boon Huat", "Yong Sheng", "Kah Seng", "Chun Hao",
    "Wei Jie", "Eng Hock", "Soon Lee", "Jun Wei",
)  # fmt: skip
_CHINESE_GIVEN_F: Final = (
    "Mei Ling", "Siew Lan", "Li Ting", "Jia Hui", "Swee Lian", "Hui Min", "Pei Shan", "Xin Yi", "Ai Ling",
    "Siew Mei", "Yee Ling", "Wen Qi",
)  # fmt: skip
_ENGLISH_M: Final = ("Jason", "Michael", "Kelvin", "Daniel", "Alvin", "Vincent", "Eric", "Steven")
_ENGLISH_F: Final = ("Michelle", "Jessica", "Grace", "Karen", "Angela", "Rachel", "Joanne", "Cindy")
_INDIAN_M: Final = (
    "Muthu", "Rajesh", "Suresh", "Ganesan", "Kumar", "Arjun", "Vijay", "Ramesh", "Selvam", "Prakash",
    "Saravanan", "Kannan",
)  # fmt: skip
_INDIAN_F: Final = ("Kavitha", "Priya", "Devi", "Lakshmi", "Shanthi", "Meena", "Anitha", "Revathi", "Malar")
_INDIAN_FATHER: Final = (
    "Rajan", "Subramaniam", "Krishnan", "Muniandy", "Arumugam", "Govindasamy", "Ramasamy", "Nair",
    "Pillay", "Maniam", "Velu", "Suppiah",
)  # fmt: skip
_IBAN_M: Final = ("Jimmy", "Robert", "Nyalau", "Jugah", "Unggang", "Mathew")
_IBAN_F: Final = ("Mary", "Rosalind", "Lunsong", "Siti Rugayah", "Helen", "Dayang")
_IBAN_FATHER: Final = ("Jugah", "Lunsong", "Empaling", "Nyaloi", "Bujang", "Saging", "Jenang")

_CO_WORDS: Final = (
    "Maju", "Jaya", "Bintang", "Cahaya", "Sinar", "Harapan", "Mutiara", "Gemilang", "Setia", "Murni",
    "Indah", "Permata", "Sentosa", "Makmur", "Bestari", "Wawasan", "Delima", "Seri", "Alam", "Timur",
    "Global", "Tech", "Prime", "Golden", "Eastern", "Pacific", "Unity", "Summit", "Evergreen", "Pinnacle",
    "Orient", "Royal", "Venture", "Apex", "Crystal", "Dynamic", "Sunrise", "Mega", "Hup Seng", "Kim Hin",
    "Soon Huat", "Teck Guan", "Lian Hoe", "Nusantara", "Borneo", "Semenanjung", "Kinabalu", "Klang Valley",
)  # fmt: skip
_CO_SUFFIX: Final = (
    "Sdn Bhd", "Sdn. Bhd.", "Enterprise", "Trading", "Berhad", "Resources", "Holdings Sdn Bhd", "Hardware",
    "Engineering Sdn Bhd", "Marketing", "Services", "PLT", "Industries (M) Sdn Bhd", "Trading & Services",
    "Logistics Sdn Bhd", "Supplies", "Construction Sdn Bhd", "Food Industries Sdn Bhd",
)  # fmt: skip
_SHOP_KIND: Final = (
    "Kedai Runcit", "Kedai Makan", "Kedai Gunting Rambut", "Kedai Emas", "Restoran", "Klinik", "Farmasi",
    "Perniagaan", "Syarikat", "Bengkel", "Kedai Kopi", "Butik",
)  # fmt: skip
_STREETS: Final = (
    "Jalan Ampang", "Jalan Tun Razak", "Jalan Sultan Ismail", "Jalan Bukit Bintang", "Jalan Gasing",
    "Jalan SS 2/24", "Jalan PJU 1/3", "Jalan USJ 10/1", "Jalan Kuchai Lama", "Lorong Maarof",
    "Persiaran Gurney", "Jalan Burma", "Jalan Wong Ah Fook", "Jalan Tebrau", "Jalan Sultan Idris Shah",
    "Jalan Bendahara", "Jalan Hang Tuah", "Jalan Merdeka", "Jalan Besar", "Jalan Perindustrian 3",
    "Jalan Industri 2/5", "Jalan Mahsuri", "Jalan Padang Tembak", "Jalan Tuaran", "Jalan Padungan",
    "Jalan Dato Onn", "Jalan Raja Laut", "Jalan Kenari 5", "Jalan Seri Austin 1", "Jalan Kempas Utama",
    "Jalan Teknologi 3/1", "Jalan Pasar", "Jalan Stesen", "Jalan Kampung Baru", "Lebuh Chulia",
)  # fmt: skip
_TAMAN: Final = (
    "Taman Sri Muda", "Taman Desa", "Taman Melawati", "Taman Universiti", "Taman Perindustrian Puchong",
    "Bandar Utama", "Taman Bukit Indah", "Taman Connaught", "Taman Sentosa", "Kawasan Perindustrian",
    "Taman Molek", "Bandar Baru Bangi", "Taman Tun Dr Ismail", "Seksyen 13", "Taman Mutiara",
    "Pusat Bandar", "Taman Megah", "Taman Sri Petaling", "Bandar Sunway", "Taman Kota Laksamana",
)  # fmt: skip
_FREE_MAIL: Final = (
    "gmail.com", "gmail.com", "gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "yahoo.com.my",
    "live.com.my", "icloud.com",
)  # fmt: skip
_CO_MAILBOX: Final = ("accounts", "admin", "sales", "info", "finance", "purchasing", "enquiry", "ap")
_MSIC: Final = (
    ("46900", "Wholesale of a variety of goods without any particular specialization"),
    ("47111", "Provision stores"),
    ("56101", "Restaurants and restaurant cum night clubs"),
    ("43301", "Installation of doors, windows, kitchen cabinets"),
    ("62010", "Computer programming activities"),
    ("49230", "Freight transport by road"),
    ("47730", "Retail sale of pharmaceutical and medical goods"),
    ("00000", "NOT APPLICABLE"),
)
_USERS: Final = ("ADMIN", "SUPERVISOR", "ACCOUNT1", "ACCOUNT2", "SALES01", "API")
_NOTES: Final = (
    "Pay by cheque only", "Call before delivery", "Blacklisted 2022 - settled", "COD only",
    "Send statement by email", "Head office in KL", "Credit review every June",
)  # fmt: skip

_MS_PER_DAY: Final = 86_400_000
_EPOCH: Final = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class SandboxData:
    """Both systems' customers, their lookups and the ground truth, from one seed.

    Attributes:
        skybiz: SkyBiz customers (:data:`SKYBIZ_SCHEMA`), sorted by ``CusCode``.
        smartacc: SmartAcc AcCustomer records (:data:`SMARTACC_SCHEMA`), sorted by ``AcCustomerID``.
        terms: ``AcTermID``, ``AcTermDesc``, ``TermDays`` (int32).
        customer_groups: ``AcCusGroupID``, ``AcCusGroupDesc``.
        customer_areas: ``AcAreaID``, ``AcAreaDesc``.
        customer_ud_groups: ``AcCusUDGroupID``, ``AcCusUDGroupDesc``.
        skybiz_currencies: the SkyBiz currency table.
        matches: ``skybiz_code``, ``smartacc_id`` — the same business in both systems.
        defects: ``system``, ``id``, ``field``, ``defect`` — which records were made dirty, and how.
        twin_variants: ``skybiz_code``, ``smartacc_id``, ``variant`` — twins whose SkyBiz record was typed
            differently on purpose (:data:`TWIN_VARIANTS`); a ``quarantined_currency`` twin is also in
            ``defects`` (``currency_unknown``), since normalization must quarantine it.
        einvoice: ``smartacc_id``, ``mistake``, ``reasons`` — how each SmartAcc record's e-invoice fields
            were filled (:data:`EINVOICE_MISTAKES`; null mistake: filled right) and the readiness reasons
            that must be found for it (``;``-separated, null: ready).
        history_start: first Malaysia date a modification time can fall on.
        history_end: last Malaysia date a modification time can fall on.
    """

    skybiz: pa.Table
    smartacc: pa.Table
    terms: pa.Table
    customer_groups: pa.Table
    customer_areas: pa.Table
    customer_ud_groups: pa.Table
    skybiz_currencies: tuple[str, ...]
    matches: pa.Table
    defects: pa.Table
    history_start: date
    history_end: date
    twin_variants: pa.Table
    einvoice: pa.Table = dataclasses.field(default_factory=lambda: _no_einvoice())


def generate(
    size: int,
    seed: int = 42,
    *,
    history_start: date = date(2021, 1, 1),
    history_end: date = date(2026, 10, 31),
    overlap: float = 0.3,
    dirty_rate: float = 0.03,
    twin_variant_rate: float = 0.03,
) -> SandboxData:
    """Generate ``size`` customers per system, deterministically for ``seed``.

    Args:
        size: customers in each system (at least 1).
        seed: the same seed always gives the same data.
        history_start: earliest modification date (Malaysia calendar date).
        history_end: latest modification date, inclusive.
        overlap: share of each system's customers that are also in the other system.
        dirty_rate: share of each system's records given exactly one recorded defect.
        twin_variant_rate: share of the clean twins given each of :data:`TWIN_VARIANTS` (on the SkyBiz side).

    Returns:
        The data both emulators serve, with the ground truth.
    """
    if size < 1:
        raise ValueError("size must be at least 1")
    if history_end < history_start:
        raise ValueError("history_end is before history_start")
    if not 0.0 <= overlap <= 1.0 or not 0.0 <= dirty_rate <= 1.0 or not 0.0 <= twin_variant_rate <= 0.25:
        raise ValueError("overlap and dirty_rate are shares between 0 and 1")
    shared = round(size * overlap)
    entities = _singapore_numbers(
        _rng(seed, "singapore-phones"), _entities(_rng(seed, "entities"), 2 * size - shared)
    )
    sky_rows = _rng(seed, "skybiz-order").permutation(size)
    sma_rows = size - shared + _rng(seed, "smartacc-order").permutation(size)
    skybiz = _skybiz(_rng(seed, "skybiz"), entities, sky_rows, history_start, history_end)
    smartacc, smartacc_entity = _smartacc(
        _rng(seed, "smartacc"), entities, sma_rows, history_start, history_end
    )
    smartacc, einvoice = _einvoice(_rng(seed, "einvoice"), smartacc, entities, smartacc_entity)

    # Ground truth of overlap: entity e (size - shared <= e < size) is in both systems.
    sky_code_of_entity = np.empty(2 * size - shared, dtype=np.int64)
    sky_code_of_entity[sky_rows] = np.arange(size)
    sma_pos_of_entity = np.full(2 * size - shared, -1, dtype=np.int64)
    sma_pos_of_entity[smartacc_entity] = np.arange(size)
    both = np.arange(size - shared, size)
    sky_idx = np.sort(sky_code_of_entity[both])
    entity_of_sky = sky_rows[sky_idx]
    matches = pa.table(
        {
            "skybiz_code": skybiz["CusCode"].take(pa.array(sky_idx)),
            "smartacc_id": smartacc["AcCustomerID"].take(pa.array(sma_pos_of_entity[entity_of_sky])),
        }
    )

    skybiz, sky_defects = _dirty(_rng(seed, "skybiz-dirty"), skybiz, "skybiz", dirty_rate)
    smartacc, sma_defects = _dirty(_rng(seed, "smartacc-dirty"), smartacc, "smartacc", dirty_rate)
    dirty_ids = set(sky_defects["id"].to_pylist()) | set(sma_defects["id"].to_pylist())
    skybiz, twin_variants, variant_defects = _twin_variants(
        _rng(seed, "twin-variants"), skybiz, matches, dirty_ids, twin_variant_rate
    )
    sky_defects = pa.concat_tables([sky_defects, variant_defects]).sort_by("id")
    defects = pa.concat_tables([sky_defects, sma_defects])

    return SandboxData(
        skybiz=skybiz,
        smartacc=smartacc,
        terms=pa.table(
            {
                "AcTermID": [t[0] for t in TERMS],
                "AcTermDesc": [t[1] for t in TERMS],
                "TermDays": pa.array([t[2] for t in TERMS], pa.int32()),
            }
        ),
        customer_groups=pa.table(
            {
                "AcCusGroupID": [g[0] for g in CUSTOMER_GROUPS],
                "AcCusGroupDesc": [g[1] for g in CUSTOMER_GROUPS],
            }
        ),
        customer_areas=pa.table(
            {
                "AcAreaID": [s[1] for s in _STATES] + ["SG", "NA"],
                "AcAreaDesc": [s[0] for s in _STATES] + ["Singapore", "Not Applicable"],
            }
        ),
        customer_ud_groups=pa.table(
            {
                "AcCusUDGroupID": [g[0] for g in CUSTOMER_UD_GROUPS],
                "AcCusUDGroupDesc": [g[1] for g in CUSTOMER_UD_GROUPS],
            }
        ),
        skybiz_currencies=SKYBIZ_CURRENCIES,
        matches=matches,
        defects=defects,
        history_start=history_start,
        history_end=history_end,
        twin_variants=twin_variants,
        einvoice=einvoice,
    )


# --- building blocks ------------------------------------------------------------------------------------


def _rng(seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(purpose.encode())])


def _pool(values: Sequence[str]) -> pa.Array:
    return pa.array(list(values), pa.string())


def _take(values: Sequence[str] | pa.Array, idx: np.ndarray) -> pa.Array:
    pool = values if isinstance(values, pa.Array) else _pool(values)
    return pool.take(pa.array(idx))


def _pick(
    rng: np.random.Generator, values: Sequence[str], n: int, p: Sequence[float] | None = None
) -> pa.Array:
    probs = None if p is None else np.asarray(p, dtype=float) / float(np.sum(p))
    return _take(values, rng.choice(len(values), size=n, p=probs))


def _cat(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of string arrays and literals."""
    items = [pa.scalar(p, pa.string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*items, pa.scalar("", pa.string()))


def _num(values: np.ndarray, width: int = 0) -> pa.Array:
    """Decimal text of non-negative integers, zero-padded to ``width`` when given."""
    ints = values.astype(np.int64)
    if width and len(ints) and int(ints.min()) >= 0 and int(ints.max()) < 10**width:
        # Fixed width: write the ASCII digits straight into an Arrow string buffer.
        powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
        digits = ((ints[:, None] // powers) % 10 + 48).astype(np.uint8)
        offsets = np.arange(0, (len(ints) + 1) * width, width, dtype=np.int32)
        return pa.Array.from_buffers(
            pa.string(), len(ints), [None, pa.py_buffer(offsets), pa.py_buffer(digits.tobytes())]
        )
    text = pc.cast(pa.array(ints), pa.string())
    return pc.utf8_lpad(text, width, padding="0") if width else text


def _digits(rng: np.random.Generator, n: int, width: int) -> pa.Array:
    return _num(rng.integers(0, 10**width, size=n), width)


def _first_bytes(arr: pa.Array) -> np.ndarray:
    """The first byte of every (non-empty) string, read straight from the Arrow buffers."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr)]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    first: np.ndarray = data[offsets].astype(np.int64)
    return first


def _const(value: str, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.string()), n)


def _where(mask: np.ndarray, yes: pa.Array | str, no: pa.Array | str) -> pa.Array:
    y = pa.scalar(yes, pa.string()) if isinstance(yes, str) else yes
    o = pa.scalar(no, pa.string()) if isinstance(no, str) else no
    out = pc.if_else(pa.array(mask), y, o)
    return out if isinstance(out, pa.Array) else _const(str(out.as_py()), len(mask))


def _choose(which: np.ndarray, *options: pa.Array | str) -> pa.Array:
    n = len(which)
    arrays = [_const(o, n) if isinstance(o, str) else o for o in options]
    return pc.choose(pa.array(which.astype(np.int8)), *arrays)


def _by_choice(which: np.ndarray, k: int, build: Callable[[int, np.ndarray], pa.Array]) -> pa.Array:
    """Variant ``which[r]`` for each row ``r``; each variant is built only for the rows that chose it."""
    return _by_choice_many(which, k, lambda i, sel: (build(i, sel),))[0]


def _by_choice_many(
    which: np.ndarray, k: int, build: Callable[[int, np.ndarray], tuple[pa.Array, ...]]
) -> list[pa.Array]:
    """Like :func:`_by_choice` for builders that return several aligned columns."""
    parts: list[tuple[pa.Array, ...]] = []
    picked: list[np.ndarray] = []
    for i in range(k):
        sel = np.flatnonzero(which == i)
        if len(sel):
            parts.append(build(i, sel))
            picked.append(sel)
    if not parts:
        return [pa.array([], pa.string())]
    rows = np.concatenate(picked)
    position = pa.array(np.argsort(rows, kind="stable"))
    return [pa.concat_arrays([p[c] for p in parts]).take(position) for c in range(len(parts[0]))]


def _nulls(rng: np.random.Generator, arr: pa.Array, share: float) -> pa.Array:
    """``arr`` with a random ``share`` of values made null (absent from SmartAcc's JSON)."""
    mask = rng.random(len(arr)) < share
    return pc.if_else(pa.array(mask), pa.scalar(None, arr.type), arr)


def _null_unless(mask: np.ndarray, arr: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), arr, pa.scalar(None, arr.type))


def _slug(arr: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(pc.utf8_lower(arr), pattern="[^a-z0-9]", replacement="")


def _days(d: date) -> int:
    return (d - _EPOCH).days


def _date_strings(first: date, last: date) -> pa.Array:
    """``YYYY-MM-DD`` for every day in ``first..last``: indexed by day offset, so formatting is a take."""
    days = np.arange(_days(first), _days(last) + 1).astype("datetime64[D]")
    return pc.strftime(pa.array(days), format="%Y-%m-%d")


# --- entities: one business or person, as it exists in the world ---------------------------------------


@dataclass(frozen=True, slots=True)
class _Entities:
    n: int
    is_company: np.ndarray
    name: pa.Array
    initial: np.ndarray  # first letter of the clean name, 0..25
    person: pa.Array  # the person (the customer, or a company's contact person)
    person2: pa.Array
    ethnicity: np.ndarray  # 0 Malay, 1 Chinese, 2 Indian, 3 Iban
    male: np.ndarray
    dob_day: np.ndarray  # days since epoch
    nric: pa.Array
    brn: pa.Array
    tin: pa.Array
    sst: pa.Array
    gst: pa.Array
    email: pa.Array
    website: pa.Array
    # phones as national significant numbers: area (no leading 0) + subscriber
    tel_area: pa.Array
    tel_sub: pa.Array
    tel2_present: np.ndarray
    tel2_sub: pa.Array
    fax_present: np.ndarray
    fax_sub: pa.Array
    mob_area: pa.Array
    mob_sub: pa.Array
    singapore: np.ndarray
    sg_tel: pa.Array
    sg_mobile: pa.Array
    addr1: pa.Array
    addr2: pa.Array
    town: pa.Array
    state_idx: np.ndarray
    state: pa.Array
    postcode: pa.Array
    currency: pa.Array
    credit_limit: np.ndarray
    term_idx: np.ndarray
    group_idx: np.ndarray
    salesperson: pa.Array
    msic_idx: np.ndarray


def _entities(rng: np.random.Generator, n: int) -> _Entities:
    is_company = rng.random(n) < 0.7
    male = rng.random(n) < 0.55
    ethnicity = rng.choice(4, size=n, p=[0.55, 0.3, 0.1, 0.05])
    person, first, family = _people(rng, n, ethnicity, male)
    person2 = person.take(pa.array(rng.permutation(n)))  # a second contact: somebody else's name

    # Companies: "Maju Jaya Trading", "Kedai Runcit Aminah", "Lim Brothers Trading", "Syarikat Sinar Timur".
    w1, w2 = _pick(rng, _CO_WORDS, n), _pick(rng, _CO_WORDS, n)
    suffix = _pick(rng, _CO_SUFFIX, n)

    def company_name(style: int, sel: np.ndarray) -> pa.Array:
        k, idx = len(sel), pa.array(sel)
        if style == 0:
            return _cat(w1.take(idx), " ", w2.take(idx), " ", suffix.take(idx))
        if style == 1:
            return _cat(w1.take(idx), " ", suffix.take(idx))
        if style == 2:
            return _cat(_pick(rng, _SHOP_KIND, k), " ", first.take(idx))
        if style == 3:
            brothers = _pick(rng, [" Brothers ", " & Sons ", " Bros. "], k)
            return _cat(_pick(rng, _CHINESE_SURNAME, k), brothers, suffix.take(idx))
        return _cat(_pick(rng, _SHOP_KIND, k), " ", w1.take(idx), " ", w2.take(idx))

    company = _by_choice(rng.choice(5, size=n, p=[0.5, 0.15, 0.15, 0.1, 0.1]), 5, company_name)
    name = _where(is_company, company, person)
    initial = (_first_bytes(pc.utf8_upper(name)) - ord("A")).clip(0, 25)

    # Identity numbers.
    today = _days(date(2026, 1, 1))
    dob_day = today - rng.integers(20 * 365, 75 * 365, size=n)
    dob = np.asarray(dob_day).astype("datetime64[D]")
    yymmdd = pc.strftime(pa.array(dob), format="%y%m%d")
    state_idx_birth = rng.integers(0, len(_STATES), size=n)
    pb = _take([s[2] for s in _STATES], state_idx_birth)
    last4 = rng.integers(0, 5000, size=n) * 2 + male.astype(np.int64)  # odd = male
    nric = _cat(yymmdd, "-", pb, "-", _num(last4, 4))
    reg_year = rng.integers(1975, 2026, size=n)
    brn_new = _cat(_num(reg_year), _pick(rng, ["01", "02", "03", "01", "01"], n), _digits(rng, n, 6))
    brn_old = _cat(_num(rng.integers(10_000, 1_400_000, size=n)), "-", _pick(rng, list("ADHKMPTUVWX"), n))
    brn = _where(rng.random(n) < 0.6, brn_new, brn_old)
    tin = _where(is_company, _cat("C", _digits(rng, n, 10), "0"), _cat("IG", _digits(rng, n, 10), "0"))
    sst_prefix = _pick(rng, ["W10", "B16", "J31", "P11", "A01"], n)
    sst = _cat(sst_prefix, "-", _digits(rng, n, 4), "-", _digits(rng, n, 8))
    gst = _cat("00", _digits(rng, n, 10))

    # Where: town, state, postcode, street address.
    town_idx = rng.choice(len(_TOWNS), size=n, p=_weights([t[4] for t in _TOWNS]))
    town = _take([t[0] for t in _TOWNS], town_idx)
    state_idx = np.array([_STATE_INDEX[t[1]] for t in _TOWNS])[town_idx]
    lo = np.array([t[2] for t in _TOWNS])[town_idx]
    hi = np.array([t[3] for t in _TOWNS])[town_idx]
    postcode = _num(lo + (rng.integers(0, 1 << 30, size=n) % (hi - lo + 1)), 5)
    number = _num(rng.integers(1, 300, size=n))

    def house_number(style: int, sel: np.ndarray) -> pa.Array:
        k, num = len(sel), number.take(pa.array(sel))
        if style == 0:
            return _cat("No. ", num, ", ")
        if style == 1:
            return _cat(num, ", ")
        if style == 2:
            return _cat("Lot ", _num(rng.integers(100, 9000, size=k)), ", ")
        if style == 3:
            return _cat(num, "-", _num(rng.integers(1, 20, size=k)), ", ")
        return _cat(num, "A, ")

    house = _by_choice(rng.choice(5, size=n, p=[0.4, 0.2, 0.15, 0.15, 0.1]), 5, house_number)
    addr1 = _cat(house, _pick(rng, _STREETS, n))
    addr2 = _take(_TAMAN, rng.integers(0, len(_TAMAN), size=n))

    # Phones: companies a landline in their state's area code, everybody a mobile.
    area = _take([s[3] for s in _STATES], state_idx)
    sub_len = np.array([s[4] for s in _STATES])[state_idx]
    first_digit = _num(rng.integers(2, 10, size=n))
    sub8 = _cat(first_digit, _digits(rng, n, 7))
    land_sub = _choose(
        np.searchsorted([6, 7, 8], sub_len), *(pc.utf8_slice_codeunits(sub8, 0, k) for k in (6, 7, 8))
    )
    mob_prefix = rng.choice(9, size=n, p=[0.25, 0.12, 0.08, 0.1, 0.12, 0.1, 0.08, 0.05, 0.1])
    mob_area = _take(["12", "13", "14", "16", "17", "19", "10", "18", "11"], mob_prefix)
    mob_sub = _where(mob_prefix == 8, _digits(rng, n, 8), _digits(rng, n, 7))
    tel_sub = _where(is_company, land_sub, mob_sub)
    # A second line and the fax share the first line's exchange: same digits but the last two.
    tel2_sub = _cat(pc.utf8_slice_codeunits(tel_sub, 0, -2), _digits(rng, n, 2))
    fax_sub = _cat(pc.utf8_slice_codeunits(tel_sub, 0, -2), _digits(rng, n, 2))

    # Money and terms.
    currency = _pick(
        rng, ["RM", "SGD", "USD", "EUR", "AUD", "CNY", "THB", "HKD"], n, [92, 4, 2.5, 0.4, 0.3, 0.4, 0.2, 0.2]
    )
    singapore = np.asarray(pc.equal(currency, "SGD")) & (rng.random(n) < 0.6)
    limits = np.array([0, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 250000], dtype=np.float64)
    credit_limit = limits[
        rng.choice(len(limits), size=n, p=[0.12, 0.12, 0.12, 0.2, 0.18, 0.12, 0.08, 0.04, 0.02])
    ]
    credit_limit = np.where(is_company, credit_limit, np.minimum(credit_limit, 5000.0))
    term_idx = rng.choice(len(TERMS), size=n, p=[0.2, 0.05, 0.1, 0.1, 0.3, 0.05, 0.1, 0.08, 0.02])
    group_idx = np.where(
        is_company,
        rng.choice([0, 1, 2, 3, 4], size=n, p=[0.3, 0.25, 0.3, 0.05, 0.1]),
        rng.choice([0, 5], size=n),
    )

    # Contact details.
    mailbox = _pick(rng, _CO_MAILBOX, n)
    domain = _cat(_slug(_cat(w1, w2)), _pick(rng, [".com.my", ".com", ".my", ".com.my"], n))
    co_email = _cat(mailbox, "@", domain)
    s_first, s_family = _slug(first), _slug(family)

    def local_part(style: int, sel: np.ndarray) -> pa.Array:
        k, idx = len(sel), pa.array(sel)
        f, fam = s_first.take(idx), s_family.take(idx)
        if style == 0:
            return _cat(f, ".", fam)
        if style == 1:
            return _cat(f, fam)
        if style == 2:
            return _cat(f, _num(rng.integers(1, 99, size=k)))
        return _cat(f, "_", fam, _num(rng.integers(60, 99, size=k)))

    person_local = _by_choice(rng.choice(4, size=n), 4, local_part)
    p_email = _cat(person_local, "@", _pick(rng, _FREE_MAIL, n))
    email = _where(rng.random(n) < 0.88, _where(is_company, co_email, p_email), "")
    email = _personal_mail_unique(email, ~is_company)
    website = _where(is_company & (rng.random(n) < 0.25), _cat("www.", domain), "")

    return _Entities(
        n=n,
        is_company=is_company,
        name=name,
        initial=initial,
        person=person,
        person2=person2,
        ethnicity=ethnicity,
        male=male,
        dob_day=dob_day,
        nric=nric,
        brn=brn,
        tin=tin,
        sst=sst,
        gst=gst,
        email=email,
        website=website,
        tel_area=_where(is_company, area, mob_area),
        tel_sub=tel_sub,
        tel2_present=rng.random(n) < 0.3,
        tel2_sub=tel2_sub,
        fax_present=is_company & (rng.random(n) < 0.5),
        fax_sub=fax_sub,
        mob_area=mob_area,
        mob_sub=mob_sub,
        singapore=singapore,
        sg_tel=_const("", n),  # drawn by _singapore_numbers from a generator of their own
        sg_mobile=_const("", n),
        addr1=addr1,
        addr2=addr2,
        town=_where(singapore, "Singapore", town),
        state_idx=state_idx,
        state=_where(singapore, "", _take([s[0] for s in _STATES], state_idx)),
        postcode=_where(singapore, _num(rng.integers(10_000, 830_000, size=n), 6), postcode),
        currency=currency,
        credit_limit=credit_limit,
        term_idx=term_idx,
        group_idx=group_idx,
        salesperson=_where(rng.random(n) < 0.85, _cat("S", _num(rng.integers(1, 21, size=n), 2)), ""),
        msic_idx=rng.integers(0, len(_MSIC), size=n),
    )


def _personal_mail_unique(email: pa.Array, person: np.ndarray) -> pa.Array:
    """A free-mail address belongs to one person: a namesake's is numbered (``aminah.salleh2@gmail.com``).

    Group companies may share ``info@`` (that stays); two people never share ``aminah.salleh@gmail.com``.
    """
    values = np.asarray(email.to_pylist(), dtype=object)
    _, inverse = np.unique(values.astype(str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    ordered = inverse[order]
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values)) - np.searchsorted(ordered, ordered, side="left")
    for i in np.flatnonzero(person & (rank > 0) & (values != "")):
        local, _, domain = str(values[i]).partition("@")
        values[i] = f"{local}{rank[i] + 1}@{domain}"
    return pa.array(values, pa.string())


def _singapore_numbers(rng: np.random.Generator, e: _Entities) -> _Entities:
    """Each entity's own Singapore landline and mobile digits (used where it is a Singapore customer).

    Both systems write the same number for the same business, however differently they format it.
    """
    n = e.n
    return dataclasses.replace(
        e,
        sg_tel=_cat("6", _digits(rng, n, 7)),
        sg_mobile=_cat(_pick(rng, ["8", "9"], n), _digits(rng, n, 7)),
    )


def _people(
    rng: np.random.Generator, n: int, ethnicity: np.ndarray, male: np.ndarray
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Full names by naming custom, with the first name and the family (or father's) name."""

    def build(group: int, sel: np.ndarray) -> tuple[pa.Array, pa.Array, pa.Array]:
        k, m = len(sel), male[sel]
        if group == 0:  # Malay: "Ahmad bin Ismail", "Siti binti Abdullah"
            first = _where(m, _pick(rng, _MALAY_M, k), _pick(rng, _MALAY_F, k))
            father = _pick(rng, _MALAY_FATHER, k)
            bin_ = _pick(rng, [" bin ", " Bin ", " b. "], k, [8, 2, 1])
            binti = _pick(rng, [" binti ", " Binti ", " bt. "], k, [8, 2, 1])
            return _cat(first, _where(m, bin_, binti), father), first, father
        if group == 1:  # Chinese: "Tan Wei Ming", "Jason Tan Wei Ming", "Michelle Lim"
            surname = _pick(rng, _CHINESE_SURNAME, k)
            given = _where(m, _pick(rng, _CHINESE_GIVEN_M, k), _pick(rng, _CHINESE_GIVEN_F, k))
            english = _where(m, _pick(rng, _ENGLISH_M, k), _pick(rng, _ENGLISH_F, k))
            style = rng.choice(3, size=k, p=[0.6, 0.25, 0.15])
            full = _choose(
                style,
                _cat(surname, " ", given),
                _cat(english, " ", surname, " ", given),
                _cat(english, " ", surname),
            )
            return full, _where(style == 0, given, english), surname
        if group == 2:  # Indian: "Muthu a/l Rajan", "Kavitha a/p Subramaniam"
            first = _where(m, _pick(rng, _INDIAN_M, k), _pick(rng, _INDIAN_F, k))
            father = _pick(rng, _INDIAN_FATHER, k)
            link = _where(m, _pick(rng, [" a/l ", " A/L "], k), _pick(rng, [" a/p ", " A/P "], k))
            return _cat(first, link, father), first, father
        first = _where(m, _pick(rng, _IBAN_M, k), _pick(rng, _IBAN_F, k))  # Iban: "Jimmy anak Jugah"
        father = _pick(rng, _IBAN_FATHER, k)
        return _cat(first, " anak ", father), first, father

    full, first, family = _by_choice_many(ethnicity, 4, build)
    return full, first, family


def _weights(values: Sequence[float]) -> np.ndarray:
    w: np.ndarray = np.asarray(values, dtype=float)
    return w / float(w.sum())


# --- phones: the many ways people write the same number -------------------------------------------------


def _phone(
    rng: np.random.Generator, area: pa.Array, sub: pa.Array, *, landline: np.ndarray | None = None
) -> pa.Array:
    """Malaysian numbers (area without the trunk 0, subscriber digits) in a mix of real-world styles."""
    n = len(area)
    weights = (20, 25, 10, 8, 7, 12, 8, 4, 3, 3)
    which = rng.choice(len(weights), size=n, p=_weights(weights))

    def style(i: int, sel: np.ndarray) -> pa.Array:
        a, s = area.take(pa.array(sel)), sub.take(pa.array(sel))
        head, tail = pc.utf8_slice_codeunits(s, 0, -4), pc.utf8_slice_codeunits(s, -4)
        if i == 0:
            return _cat("0", a, "-", s)  # 012-3456789, 03-21421234
        if i == 1:
            return _cat("0", a, "-", head, " ", tail)  # 012-345 6789, 03-2142 1234
        if i == 2:
            return _cat("+60", a, "-", s)  # +6012-3456789
        if i == 3:
            return _cat("60", a, s)  # 60123456789
        if i == 4:
            return _cat("(0", a, ") ", head, " ", tail)  # (03) 2142 1234
        if i == 5:
            return _cat("0", a, s)  # 0123456789
        if i == 6:
            return _cat("+60 ", a, " ", head, " ", tail)  # +60 12 345 6789
        if i == 7:
            return _cat("0", a, " - ", s)  # 012 - 3456789
        if i == 8:
            return _cat("0", a, ".", head, ".", tail)  # 03.2142.1234
        return _cat("+60", a, s)  # +60123456789

    out = _by_choice(which, len(weights), style)
    if landline is not None:
        ext = landline & (rng.random(n) < 0.08)
        sel = np.flatnonzero(ext)
        if len(sel):
            k = len(sel)
            tagged = _cat(out.take(pa.array(sel)), _pick(rng, [" ext 1", " ext. 2", " x", " Ext "], k),
                          _num(rng.integers(10, 400, size=k)))  # fmt: skip
            out = pc.replace_with_mask(out, pa.array(ext), tagged)
    return out


def _sg_phone(rng: np.random.Generator, num: pa.Array) -> pa.Array:
    """A Singapore entity's own eight digits, written in one of the ways people write them."""
    n = len(num)
    # The draws that once made up a number per system: kept so that every later value stays where it was.
    _pick(rng, ["6", "8", "9"], n), _digits(rng, n, 7)
    head, tail = pc.utf8_slice_codeunits(num, 0, 4), pc.utf8_slice_codeunits(num, 4)
    return _choose(
        rng.choice(3, size=n), _cat("+65 ", head, " ", tail), _cat(head, " ", tail), _cat("65-", num)
    )


def _phones(rng: np.random.Generator, e: _Entities, rows: np.ndarray) -> dict[str, pa.Array]:
    """Tel, second tel, fax and mobile of the chosen entities, each written in its own style."""
    idx = pa.array(rows)
    sg = e.singapore[rows]
    co = e.is_company[rows]
    tel_area, tel_sub = e.tel_area.take(idx), e.tel_sub.take(idx)
    mob = _phone(rng, e.mob_area.take(idx), e.mob_sub.take(idx))
    tel = _phone(rng, tel_area, tel_sub, landline=co)
    tel2 = _where(e.tel2_present[rows], _phone(rng, tel_area, e.tel2_sub.take(idx)), "")
    fax = _where(e.fax_present[rows], _phone(rng, tel_area, e.fax_sub.take(idx)), "")
    if sg.any():
        mask = pa.array(sg)
        sg_rows = pa.array(rows[sg])
        tel = pc.replace_with_mask(tel, mask, _sg_phone(rng, e.sg_tel.take(sg_rows)))
        mob = pc.replace_with_mask(mob, mask, _sg_phone(rng, e.sg_mobile.take(sg_rows)))
    return {"tel": tel, "tel2": tel2, "fax": fax, "mobile": mob}


# --- the two systems ------------------------------------------------------------------------------------


def _wall_seconds(rng: np.random.Generator, n: int, first: date, last: date) -> np.ndarray:
    """Uniform naive wall times (epoch seconds) over ``first 00:00:00 .. last 23:59:59``."""
    lo = _days(first) * 86_400
    hi = (_days(last) + 1) * 86_400
    return rng.integers(lo, hi, size=n)


def _skybiz(rng: np.random.Generator, e: _Entities, rows: np.ndarray, first: date, last: date) -> pa.Table:
    n = len(rows)
    idx = pa.array(rows)
    width = max(6, len(str(n)))
    codes = _cat("C", _num(np.arange(1, n + 1), width))
    phones = _phones(rng, e, rows)
    town, state, postcode = e.town.take(idx), e.state.take(idx), e.postcode.take(idx)
    address = _cat(e.addr1.take(idx), " ", e.addr2.take(idx))
    with_city = rng.random(n) < 0.6
    address = _where(with_city, _cat(address, " ", postcode, " ", town, " ", state), address)
    address = pc.utf8_trim_whitespace(address)
    modified = _wall_seconds(rng, n, first, last)
    mod_day = modified // 86_400
    # DateStart: the customer's start, before the record was last modified.
    pool_first = date(2000, 1, 1)
    all_days = _date_strings(pool_first, max(last, date(2027, 12, 31)))
    start_day = np.maximum(mod_day - rng.integers(0, 15 * 365, size=n), _days(pool_first))
    date_start = _where(rng.random(n) < 0.85, all_days.take(pa.array(start_day - _days(pool_first))), "")
    company = e.is_company[rows]
    dob_pool = _date_strings(date(1940, 1, 1), date(2010, 12, 31))
    dob_off = np.clip(e.dob_day[rows] - _days(date(1940, 1, 1)), 0, len(dob_pool) - 1)
    dob = _where(~company & (rng.random(n) < 0.7), dob_pool.take(pa.array(dob_off)), "")
    sex = _where(company, "", _where(e.male[rows], "M", "F"))
    term_days = np.array([t[2] for t in TERMS], dtype=np.int32)[e.term_idx[rows]]
    country = _where(
        e.singapore[rows],
        "Singapore",
        _pick(rng, ["Malaysia", "MALAYSIA", "Malaysia", "MY"], n, [90, 6, 3, 1]),
    )
    columns: dict[str, pa.Array] = {
        "CusCode": codes,
        "CusName": e.name.take(idx),
        "Address": address,
        "AreaCode": _where(e.singapore[rows], "SG", _take([s[1] for s in _STATES], e.state_idx[rows])),
        "CurCode": e.currency.take(idx),
        "Tel": phones["tel"],
        "Tel2": phones["tel2"],
        "Fax": phones["fax"],
        "Fax2": _where(e.fax_present[rows] & (rng.random(n) < 0.1), phones["fax"], ""),
        "Email": e.email.take(idx),
        "Contact": _where(company, e.person.take(idx), ""),
        "ContactTel": _where(company, phones["mobile"], ""),
        "Town": town,
        "State": state,
        "Country": country,
        "PostCode": postcode,
        "SalesPersonCode": e.salesperson.take(idx),
        "CreditLimit": pa.array(e.credit_limit[rows]),
        "TermCode": pa.array(term_days, pa.int32()),
        "StatusBadYN": _where(rng.random(n) < 0.03, "1", "0"),
        "DateStart": date_start,
        "DOB": dob,
        "Sex": sex,
        "MemberType": _where(
            company, "", _pick(rng, ["", "NORMAL", "SILVER", "GOLD", "PLATINUM"], n, [60, 20, 10, 7, 3])
        ),
        "DateTimeModified": pa.array(modified.astype("datetime64[s]"), pa.timestamp("s")),
        "AccountCode": _pick(rng, ["3000/000", "AR-001", "AR-002", "3000/100"], n, [50, 30, 10, 10]),
        "CategoryCode": _take([g[0] for g in CUSTOMER_GROUPS], e.group_idx[rows]),
        "FinCatCode": _const("B55", n),
    }
    return pa.Table.from_arrays([columns[f.name] for f in SKYBIZ_SCHEMA], schema=SKYBIZ_SCHEMA)


def _smartacc(
    rng: np.random.Generator, e: _Entities, rows: np.ndarray, first: date, last: date
) -> tuple[pa.Table, np.ndarray]:
    """AcCustomer records of the given entities, sorted by id; also returns the entity of each record."""
    n = len(rows)
    # Ids like 300-M0001: ledger prefix, first letter of the name, running number per letter.
    letter = e.initial[rows]
    order = np.argsort(letter, kind="stable")
    sorted_letters = letter[order]
    group_start = np.searchsorted(sorted_letters, sorted_letters, side="left")
    running = np.empty(n, dtype=np.int64)
    running[order] = np.arange(n) - group_start + 1
    width = max(4, len(str(int(running.max()))))
    letters = _take([chr(ord("A") + i) for i in range(26)], letter)
    ids = _cat("300-", letters, _num(running, width))
    # Sort records by id: letter first, then running number (same width, so text order = numeric order).
    by_id = np.lexsort((running, letter))
    rows = rows[by_id]
    ids = ids.take(pa.array(by_id))
    idx = pa.array(rows)
    company = e.is_company[rows]
    sg = e.singapore[rows]
    phones = _phones(rng, e, rows)

    edit_ms = _wall_seconds(rng, n, first, last) * 1000 + rng.integers(0, 1000, size=n)
    stamp = np.where(rng.random(n) < 0.3, 0, rng.integers(1, 25, size=n))
    age_ms = (rng.random(n) * (edit_ms - _days(first) * _MS_PER_DAY)).astype(np.int64)
    create_ms = np.where(stamp == 0, edit_ms, edit_ms - age_ms)
    is_member = ~company & (rng.random(n) < 0.4)
    join_ms = np.maximum(create_ms - rng.integers(0, 400, size=n) * _MS_PER_DAY, _days(first) * _MS_PER_DAY)
    join_ms = join_ms - join_ms % _MS_PER_DAY
    expire_ms = join_ms + rng.choice([365, 730, 1095], size=n) * _MS_PER_DAY
    married = is_member & (rng.random(n) < 0.15)
    marriage_ms = (e.dob_day[rows] + rng.integers(22 * 365, 35 * 365, size=n)) * _MS_PER_DAY
    dob_known = ~company & (rng.random(n) < 0.6)
    einv = (edit_ms >= _days(date(2024, 6, 1)) * _MS_PER_DAY) & (rng.random(n) < 0.8)
    tin_ok = einv & (rng.random(n) < 0.85)

    def ts(ms: np.ndarray, keep: np.ndarray | None = None) -> pa.Array:
        arr = pa.array(ms.astype("datetime64[ms]"), pa.timestamp("ms"))
        return arr if keep is None else _null_unless(keep, arr)

    def yn(p_yes: float) -> pa.Array:
        return _where(rng.random(n) < p_yes, "Y", "N")

    state_name = e.state.take(idx)
    town, postcode = e.town.take(idx), e.postcode.take(idx)
    addr3 = _where(sg, _cat("Singapore ", postcode), _cat(postcode, " ", town))
    name = e.name.take(idx)
    email = e.email.take(idx)
    brn = e.brn.take(idx)
    nric = e.nric.take(idx)
    reg_number = _where(company, brn, nric)
    gst_reg = company & (rng.random(n) < 0.3)
    sst_reg = company & (rng.random(n) < 0.2)
    sst = e.sst.take(idx)
    term_ids = _take([t[0] for t in TERMS], e.term_idx[rows])
    msic = e.msic_idx[rows]
    tin = e.tin.take(idx)
    limit = e.credit_limit[rows]
    balance = np.round(limit * rng.random(n) * (rng.random(n) < 0.6), 2)
    points_acc = np.where(is_member, np.round(rng.random(n) * 5000, 2), 0.0)
    points_bal = np.round(points_acc * rng.random(n), 2)
    ethnic_ids = _take(["MALAY", "CHINESE", "INDIAN", "OTHERS"], e.ethnicity[rows])
    created_by = _pick(rng, _USERS, n)

    def einv_text(arr: pa.Array | str) -> pa.Array:
        return _null_unless(einv, arr if isinstance(arr, pa.Array) else _const(arr, n))

    columns: dict[str, pa.Array] = {
        "AcCustomerID": ids,
        "AcCustomerName": name,
        "AcTermID": term_ids,
        "AcAreaID": _where(sg, "SG", _take([s[1] for s in _STATES], e.state_idx[rows])),
        "AcCusGroupID": _take([g[0] for g in CUSTOMER_GROUPS], e.group_idx[rows]),
        "AcCusUDGroupID": _pick(rng, [g[0] for g in CUSTOMER_UD_GROUPS], n, [70, 10, 8, 8, 4]),
        "BillingAddress1": e.addr1.take(idx),
        "BillingAddress2": _nulls(rng, e.addr2.take(idx), 0.05),
        "BillingAddress3": addr3,
        "BillingAddress4": _where(sg, "Singapore", _nulls(rng, state_name, 0.1)),
        "BillingTel1": phones["tel"],
        "BillingTel2": _nulls(rng, phones["tel2"], 0.3),
        "BillingFax1": _nulls(rng, phones["fax"], 0.3),
        "BillingFax2": _nulls(rng, _const("", n), 0.5),
        "BillingPostalCode": postcode,
        "BillingContact1": _where(company, e.person.take(idx), name),
        "BillingContact2": _nulls(rng, _where(company & (rng.random(n) < 0.3), e.person2.take(idx), ""), 0.4),
        "BillingEmail": _nulls(rng, email, 0.05),
        "BillingHomePage": _nulls(rng, e.website.take(idx), 0.5),
        "IsActive": yn(0.95),
        "Notes": _nulls(rng, _where(rng.random(n) < 0.15, _pick(rng, _NOTES, n), ""), 0.6),
        "CreateBy": created_by,
        "CreateDate": ts(create_ms),
        "EditBy": _where(stamp == 0, created_by, _pick(rng, _USERS, n)),
        "EditDate": ts(edit_ms),
        "Stamp": pa.array(stamp.astype(np.int64), pa.int64()),
        "AcCustomerNickName": _nulls(
            rng, _where(rng.random(n) < 0.2, pc.utf8_slice_codeunits(name, 0, 12), ""), 0.5
        ),
        "DateOfBirth": ts(e.dob_day[rows] * _MS_PER_DAY, dob_known),
        "IsMember": _where(is_member, "Y", "N"),
        "Gender": _where(company, "M", _where(e.male[rows], "M", "F")),
        "MemberNo": _where(is_member, _cat("M", _digits(rng, n, 6)), ""),
        "MobileNo": _where(rng.random(n) < 0.9, phones["mobile"], ""),
        "IdentityNo": _where(~company & (rng.random(n) < 0.7), nric, ""),
        "MemberJoinDate": ts(join_ms, is_member),
        "MemberExpireDate": ts(expire_ms, is_member),
        "MemberMarriageDate": ts(marriage_ms, married),
        "AcMemberEthnicID": _where(is_member, ethnic_ids, "NA"),
        "AcMemberIncomeID": _where(is_member, _pick(rng, ["NA", "B40", "M40", "T20"], n), "NA"),
        "AcMemberOccupationID": _nulls(rng, _const("NA", n), 0.2),
        "MemberPointBalance": pa.array(points_bal),
        "MemberPointAccumulated": pa.array(points_acc),
        "PriceCode": _pick(rng, ["1", "2", "3", "4", "5"], n, [70, 12, 8, 6, 4]),
        "AcSalesmanID": _where(pc.equal(e.salesperson.take(idx), ""), "NA", e.salesperson.take(idx)),
        "IsGSTRegister": _where(gst_reg, "Y", "N"),
        "GSTRegisterNumber": _nulls(rng, _where(gst_reg, e.gst.take(idx), ""), 0.3),
        "BusinessRegisterNumber": _nulls(rng, _where(company, brn, ""), 0.1),
        "AcCurrencyID": e.currency.take(idx),
        "IsAllowPrintStatement": yn(0.9),
        "IsAllowExceedCreditTerm": yn(0.1),
        "IsAllowExceedCreditLimit": yn(0.1),
        "LocalCreditLimit": pa.array(limit),
        "LocalBalanceAmount": pa.array(balance),
        "AcTaxID": _nulls(rng, _pick(rng, ["", "SR", "ZR", "ES"], n, [50, 30, 15, 5]), 0.5),
        "IsAllowCreditSalesForPOS": yn(0.2),
        "MemberNotes": _nulls(rng, _const("", n), 0.7),
        "AcINCardPackageID": pa.nulls(n, pa.string()),
        "AcCustomerIDParentID": ids,
        "TaxSLTRegistrationNo": _nulls(rng, _where(sst_reg, sst, ""), 0.5),
        "TaxSVTRegistrationNo": _nulls(rng, _where(sst_reg & (rng.random(n) < 0.5), sst, ""), 0.5),
        "AcTaxIDSST": _nulls(rng, _where(sst_reg, "SST10", ""), 0.5),
        "SSTExemptionCertNumber": _nulls(rng, _const("", n), 0.6),
        "EInvoiceRegName": einv_text(name),
        "EInvoiceRegTIN": einv_text(tin),
        "EInvoiceRegNumber": einv_text(reg_number),
        "EInvoiceIsMalaysian": einv_text(_where(sg, "N", "Y")),
        "EInvoiceRegType": einv_text(_where(company, "BRN", "NRIC")),
        "EInvoiceRegNumber_NRIC": einv_text(_where(company, "", nric)),
        "EInvoiceRegNumber_PASSPORT": einv_text(""),
        "EInvoiceRegNumber_BRN": einv_text(_where(company, brn, "")),
        "EInvoiceRegNumber_ARMY": einv_text(""),
        "EInvoiceRegSSTNumber": einv_text(_where(sst_reg, sst, "NA")),
        "EInvoiceRegTourismTaxRegNumber": einv_text("NA"),
        "EInvoiceRegEmail": einv_text(email),
        "AcEInvoiceSupplierMSICID": einv_text(_take([m[0] for m in _MSIC], msic)),
        "EInvoiceRegBusinessActivityDescription": einv_text(_take([m[1] for m in _MSIC], msic)),
        "EInvoiceRegContactNumber": einv_text(phones["tel"]),
        "EInvoiceAddressLine0": einv_text(e.addr1.take(idx)),
        "EInvoiceAddressLine1": einv_text(e.addr2.take(idx)),
        "EInvoiceAddressLine2": einv_text(""),
        "EInvoiceAddressPostalZone": einv_text(postcode),
        "EInvoiceAddressCityName": einv_text(town),
        "AcEInvoiceAddressStateID": einv_text(
            _where(sg, "17", _take([s[2] for s in _STATES], e.state_idx[rows]))
        ),
        "AcEInvoiceAddressCountryID": einv_text(_where(sg, "SGP", "MYS")),
        "EInvoiceIsEnabledTINValidation": einv_text("Y"),
        "EInvoiceIsEnabledAutoTINValidation": einv_text(yn(0.5)),
        "EInvoiceIsTINValidateSuccess": einv_text(_where(tin_ok, "Y", "N")),
        "EInvoiceTINValidateDateTime": ts(edit_ms - rng.integers(0, 3_600_000, size=n), tin_ok),
        "EInvoiceTINValidateBy": _null_unless(tin_ok, created_by),
        "EInvoiceTINValidateRequestBody": _null_unless(tin_ok, _cat('{"tin":"', tin, '","idType":"BRN"}')),
        "EInvoiceTINValidateResponseBody": _null_unless(tin_ok, _const('{"status":"valid"}', n)),
        "EInvoiceTINValidateResponseStatus": _null_unless(tin_ok, _const("200", n)),
        "EInvoiceTINValidateProcessLog": einv_text(""),
        "EInvoiceIsNotApplicable": einv_text("N"),
    }
    table = pa.Table.from_arrays([columns[f.name] for f in SMARTACC_SCHEMA], schema=SMARTACC_SCHEMA)
    return table, rows


# --- e-invoice fields ------------------------------------------------------------------------------------

EINVOICE_MISTAKES: Final[dict[str, tuple[str, ...]]] = {
    "not_set_up": (
        "tin_missing", "id_missing", "sst_missing", "address_incomplete", "state_code_missing",
        "tin_not_validated",
    ),
    "tin_missing": ("tin_missing", "tin_not_validated"),
    "tin_legacy_prefix": ("tin_legacy_prefix", "tin_not_validated"),
    "company_individual_tin": ("tin_kind_mismatch", "tin_not_validated"),
    "nric_dashes": ("nric_format", "tin_not_validated"),
    "brn_old_format": ("brn_old_format", "tin_not_validated"),
    "state_name": ("state_code_invalid",),
    "tin_not_validated": ("tin_not_validated",),
}  # fmt: skip
"""How tenants fill SmartAcc's e-invoice fields wrong, and the readiness reasons each must produce (in the
contract's order). ``not_set_up``: no e-invoice field filled at all; ``tin_legacy_prefix``: an individual's
``SG``/``OG`` TIN not migrated to ``IG``; ``company_individual_tin``: a company (SSM entity type 01/02) under
its owner's ``IG`` TIN; ``nric_dashes``: ``YYMMDD-PB-####``; ``brn_old_format``: the pre-2019 ``1081349-V``;
``state_name``: ``Selangor`` where the LHDN code ``10`` belongs. TIN and ID mistakes fail SmartAcc's TIN
validation with LHDN too."""

# (mistake, share of the set-up records drawn for it); a record not eligible for its draw stays right.
_EINVOICE_RATES: Final = (
    ("tin_missing", 0.03), ("tin_legacy_prefix", 0.04), ("company_individual_tin", 0.03),
    ("nric_dashes", 0.06), ("brn_old_format", 0.04), ("state_name", 0.04), ("tin_not_validated", 0.04),
)  # fmt: skip
_EINVOICE_SET_UP: Final = 0.88
_FOREIGN_BUYER_TIN: Final = "EI00000000020"


def _einvoice(
    rng: np.random.Generator, table: pa.Table, e: _Entities, rows: np.ndarray
) -> tuple[pa.Table, pa.Table]:
    """Fill the SmartAcc records' e-invoice fields the way tenants do: mostly right, a few known mistakes.

    Runs on the finished AcCustomer table from its own random stream and rewrites only the e-invoice
    fields, so every other field keeps the values it had; returns the table and the truth
    (:attr:`SandboxData.einvoice`).
    """
    n = table.num_rows
    company, sg = e.is_company[rows], e.singapore[rows]
    set_up = rng.random(n) < _EINVOICE_SET_UP
    draw = rng.random(n)
    # The 12-digit SSM number each company files under; one with only an old number gets its new one.
    brn_now = e.brn.take(pa.array(rows))
    new_format = np.asarray(pc.fill_null(pc.match_substring_regex(brn_now, r"^[0-9]{12}$"), False))
    entity = _pick(rng, ["01", "01", "01", "02", "03"], n)
    minted = _cat(_num(rng.integers(1975, 2026, size=n)), entity, _digits(rng, n, 6))
    brn = _where(new_format, brn_now, minted)
    entity_of = pc.utf8_slice_codeunits(brn, 4, 6)
    company_brn = company & np.asarray(pc.is_in(entity_of, value_set=pa.array(["01", "02"])))
    nric_dashed = e.nric.take(pa.array(rows))
    nric = pc.replace_substring(nric_dashed, "-", "")
    tin = e.tin.take(pa.array(rows))
    tin_digits = pc.replace_substring_regex(tin, "^[A-Z]+", "")

    eligible = {
        "tin_missing": ~sg,
        "tin_legacy_prefix": ~sg & ~company,
        "company_individual_tin": ~sg & company_brn,
        "nric_dashes": ~sg & ~company,
        "brn_old_format": ~sg & company,
        "state_name": ~sg,
        "tin_not_validated": np.ones(n, dtype=bool),
    }
    mistake = np.full(n, "", dtype=object)
    low = 0.0
    for kind, rate in _EINVOICE_RATES:
        hit = set_up & (draw >= low) & (draw < low + rate) & eligible[kind]
        mistake[hit] = kind
        low += rate
    mistake[~set_up] = "not_set_up"

    def m(kind: str) -> np.ndarray:
        return np.asarray(mistake == kind)

    legacy = _cat(_pick(rng, ["SG", "OG"], n), tin_digits)
    tin_text = _where(sg, _FOREIGN_BUYER_TIN, tin)
    tin_text = _where(m("tin_legacy_prefix"), legacy, tin_text)
    tin_text = _where(m("company_individual_tin"), _cat("IG", tin_digits), tin_text)
    tin_text = _where(m("tin_missing"), "", tin_text)
    old_brn = _cat(_num(rng.integers(10_000, 1_400_000, size=n)), "-", _pick(rng, list("ADHKMPTUVWX"), n))
    brn_text = _where(sg, "NA", _where(m("brn_old_format"), old_brn, brn))
    nric_text = _where(m("nric_dashes"), nric_dashed, nric)
    typ = _where(company | sg, "BRN", "NRIC")
    number = _where(company | sg, brn_text, nric_text)
    state_idx = e.state_idx[rows]
    code = _where(sg, "17", _take([s[2] for s in _STATES], state_idx))
    state_text = _where(m("state_name"), _take([s[0] for s in _STATES], state_idx), code)
    validated = ~np.isin(
        mistake,
        ["not_set_up", "tin_missing", "tin_legacy_prefix", "company_individual_tin", "nric_dashes",
         "brn_old_format", "tin_not_validated"],
    )  # fmt: skip
    sst_old = table["EInvoiceRegSSTNumber"].combine_chunks()
    slt = table["TaxSLTRegistrationNo"].combine_chunks()
    registered = pc.fill_null(pc.match_substring_regex(sst_old, r"^[A-Z][0-9]{2}-"), False)
    sst = pc.if_else(registered, sst_old, pc.if_else(pc.fill_null(pc.not_equal(slt, ""), False), slt, "NA"))
    edit_ms = pc.cast(table["EditDate"].combine_chunks(), pa.int64()).to_numpy(zero_copy_only=False)
    checked_ms = edit_ms - rng.integers(0, 3_600_000, size=n)

    def col(name: str) -> pa.Array:
        return table[name].combine_chunks()

    def keep(arr: pa.Array | str, mask: np.ndarray = set_up) -> pa.Array:
        return _null_unless(mask, arr if isinstance(arr, pa.Array) else _const(arr, n))

    fields: dict[str, pa.Array] = {
        "EInvoiceRegName": keep(col("AcCustomerName")),
        "EInvoiceRegTIN": keep(tin_text),
        "EInvoiceRegNumber": keep(number),
        "EInvoiceIsMalaysian": keep(_where(sg, "N", "Y")),
        "EInvoiceRegType": keep(typ),
        "EInvoiceRegNumber_NRIC": keep(_where(company | sg, "", nric_text)),
        "EInvoiceRegNumber_PASSPORT": keep(""),
        "EInvoiceRegNumber_BRN": keep(_where(company | sg, brn_text, "")),
        "EInvoiceRegNumber_ARMY": keep(""),
        "EInvoiceRegSSTNumber": keep(sst),
        "EInvoiceRegTourismTaxRegNumber": keep("NA"),
        "EInvoiceRegEmail": keep(pc.fill_null(col("BillingEmail"), "")),
        "EInvoiceRegContactNumber": keep(col("BillingTel1")),
        "EInvoiceAddressLine0": keep(col("BillingAddress1")),
        "EInvoiceAddressLine1": keep(pc.fill_null(col("BillingAddress2"), "")),
        "EInvoiceAddressLine2": keep(""),
        "EInvoiceAddressPostalZone": keep(col("BillingPostalCode")),
        "EInvoiceAddressCityName": keep(e.town.take(pa.array(rows))),
        "AcEInvoiceAddressStateID": keep(state_text),
        "AcEInvoiceAddressCountryID": keep(_where(sg, "SGP", "MYS")),
        "EInvoiceIsEnabledTINValidation": keep("Y"),
        "EInvoiceIsTINValidateSuccess": keep(_where(validated, "Y", "N")),
        "EInvoiceTINValidateDateTime": _null_unless(
            validated, pa.array(checked_ms.astype("datetime64[ms]"), pa.timestamp("ms"))
        ),
        "EInvoiceTINValidateBy": _null_unless(validated, col("CreateBy")),
        "EInvoiceTINValidateRequestBody": _null_unless(
            validated, _cat('{"tin":"', tin_text, '","idType":"', typ, '","idValue":"', number, '"}')
        ),
        "EInvoiceTINValidateResponseBody": _null_unless(validated, _const('{"status":"valid"}', n)),
        "EInvoiceTINValidateResponseStatus": _null_unless(validated, _const("200", n)),
        "EInvoiceTINValidateProcessLog": keep(""),
        "EInvoiceIsNotApplicable": keep("N"),
    }
    for name, values in fields.items():
        i = table.schema.get_field_index(name)
        table = table.set_column(i, table.schema.field(name), pc.cast(values, table.schema.field(name).type))
    reasons = pa.array([";".join(EINVOICE_MISTAKES[k]) if k else None for k in mistake], pa.string())
    truth = pa.table(
        {
            "smartacc_id": col("AcCustomerID"),
            "mistake": pa.array([k or None for k in mistake], pa.string()),
            "reasons": reasons,
        }
    )
    return table, truth


def _no_einvoice() -> pa.Table:
    return pa.table({c: pa.array([], pa.string()) for c in ("smartacc_id", "mistake", "reasons")})


# --- dirt -----------------------------------------------------------------------------------------------

# (field, defect) pairs each system can receive; one is drawn per dirty record.
_SKYBIZ_DEFECTS: Final = (
    ("CusName", "name_blank"), ("CusName", "name_whitespace"), ("CusName", "name_case"),
    ("Email", "email_invalid"), ("Email", "email_whitespace"), ("Tel", "phone_unparseable"),
    ("CurCode", "currency_unknown"), ("State", "state_spelling"), ("PostCode", "postcode_invalid"),
    ("DateStart", "date_unparseable"), ("DOB", "date_unparseable"), ("Town", "town_whitespace"),
)  # fmt: skip
_SMARTACC_DEFECTS: Final = (
    ("AcCustomerName", "name_blank"), ("AcCustomerName", "name_whitespace"),
    ("AcCustomerName", "name_case"),
    ("BillingEmail", "email_invalid"), ("BillingEmail", "email_whitespace"),
    ("BillingTel1", "phone_unparseable"), ("MobileNo", "phone_unparseable"),
    ("AcCurrencyID", "currency_unknown"),
    ("BillingAddress4", "state_spelling"), ("BillingPostalCode", "postcode_invalid"),
    ("Gender", "gender_invalid"),
)  # fmt: skip


def _dirty(rng: np.random.Generator, table: pa.Table, system: str, rate: float) -> tuple[pa.Table, pa.Table]:
    """Give ``rate`` of the records exactly one defect each; return the table and the defect list."""
    n = table.num_rows
    id_field = "CusCode" if system == "skybiz" else "AcCustomerID"
    catalogue = _SKYBIZ_DEFECTS if system == "skybiz" else _SMARTACC_DEFECTS
    k = round(n * rate)
    rows = np.sort(rng.choice(n, size=k, replace=False)) if k else np.zeros(0, dtype=np.int64)
    kinds = rng.integers(0, len(catalogue), size=k)
    ids: list[pa.Array] = []
    fields: list[str] = []
    names: list[str] = []
    name_field = "CusName" if system == "skybiz" else "AcCustomerName"
    for i, (field, defect) in enumerate(catalogue):
        sel = rows[kinds == i]
        if not len(sel):
            continue
        current = table[field].combine_chunks().take(pa.array(sel))
        bad = _defect_values(rng, defect, current, table[name_field].combine_chunks().take(pa.array(sel)))
        mask = np.zeros(n, dtype=bool)
        mask[sel] = True
        col = pc.replace_with_mask(table[field].combine_chunks(), pa.array(mask), bad)
        table = table.set_column(table.schema.get_field_index(field), table.schema.field(field), col)
        ids.append(table[id_field].combine_chunks().take(pa.array(sel)))
        fields.extend([field] * len(sel))
        names.extend([defect] * len(sel))
    id_col = pa.concat_arrays(ids) if ids else pa.array([], pa.string())
    defects = pa.table(
        {
            "system": pa.array([system] * len(id_col), pa.string()),
            "id": id_col,
            "field": pa.array(fields, pa.string()),
            "defect": pa.array(names, pa.string()),
        }
    )
    return table, defects.sort_by("id")


def _defect_values(rng: np.random.Generator, defect: str, current: pa.Array, name: pa.Array) -> pa.Array:
    """Dirty replacements for ``current`` (the clean values of the chosen records)."""
    n = len(current)
    clean = pc.fill_null(current, "")
    if defect == "name_blank":
        return _pick(rng, ["", " ", "   ", "\t"], n)
    if defect in ("name_whitespace", "email_whitespace", "town_whitespace"):
        base = _where(np.asarray(pc.equal(clean, "")), "x", clean) if defect == "town_whitespace" else clean
        return _cat(_pick(rng, ["  ", " ", ""], n), base, _pick(rng, [" ", "  ", "\t", " "], n))
    if defect == "name_case":
        return _choose(
            rng.choice(3, size=n), pc.utf8_upper(clean), pc.utf8_lower(clean), pc.utf8_swapcase(clean)
        )
    if defect == "email_invalid":
        local = _slug(name)
        local = _where(np.asarray(pc.equal(local, "")), "customer", local)
        return _choose(
            rng.choice(8, size=n),
            _cat(local, "@gmail"),
            _cat(local, ".gmail.com"),
            _cat(local, "@@gmail.com"),
            "n/a",
            "-",
            _cat(local, "@gmail,com"),
            _cat(local, " @ yahoo.com"),
            _cat(local, "@yahoo.com; ", local, "@gmail.com"),
        )
    if defect == "phone_unparseable":
        return _pick(rng, ["12345", "N/A", "-", "0", "03-", "TBA", "012-345", "tel", "++60", "1-800-HELP"], n)
    if defect == "currency_unknown":
        return _pick(rng, ["RMX", "rm", "MYR ", " RM", "RM.", "Ringgit", "R.M."], n)
    if defect == "state_spelling":
        # Spell the record's own state another way; records without a state get "KL".
        states = clean.to_pylist()
        return pa.array(
            [
                _STATE_SPELLINGS.get(s, ("KL", "Penang", "johor", "N. Sembilan"))[int(r)]
                for s, r in zip(states, rng.integers(0, 4, size=n), strict=True)
            ],
            pa.string(),
        )
    if defect == "postcode_invalid":
        head = pc.utf8_slice_codeunits(clean, 0, 4)
        return _choose(rng.choice(4, size=n), head, _cat(clean, "-"), "PJ", _cat(head, "O"))
    if defect == "date_unparseable":
        return _pick(
            rng, ["31/12/2020", "00/00/0000", "2020-13-45", "12-31-2019", "Jan 5 2018", "0000-00-00"], n
        )
    if defect == "gender_invalid":
        return _pick(rng, ["m", "f", "Male", "FEMALE", "", "-"], n)
    raise ValueError(f"unknown defect {defect!r}")


TWIN_VARIANTS: Final = ("upper_case", "legal_form_punctuation", "phone_international", "quarantined_currency")
"""How a twin's SkyBiz record is typed differently from its SmartAcc one: ``MAJU JAYA SDN BHD``; ``Sdn Bhd``
written ``SDN. BHD.`` (and back); the phone written ``+603-…`` where the twin has ``03-…`` (and back); a
currency SkyBiz accepts but skysmart cannot read (``XYZ``), so the SkyBiz row is quarantined."""


def _twin_variants(
    rng: np.random.Generator, skybiz: pa.Table, matches: pa.Table, dirty: set[str], rate: float
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Retype ``rate`` of the clean twins' SkyBiz records per variant; the table, the truth, new defects."""
    empty = pa.array([], pa.string())
    codes = matches["skybiz_code"].to_pylist()
    ids = matches["smartacc_id"].to_pylist()
    clean = [i for i, (c, s) in enumerate(zip(codes, ids, strict=True)) if c not in dirty and s not in dirty]
    k = round(len(clean) * rate)
    if not k:
        return skybiz, pa.table({"skybiz_code": empty, "smartacc_id": empty, "variant": empty}), _no_defects()
    order = rng.permutation(len(clean))
    position = {code: i for i, code in enumerate(skybiz["CusCode"].to_pylist())}
    names = skybiz["CusName"].to_pylist()
    tels = skybiz["Tel"].to_pylist()
    currencies = skybiz["CurCode"].to_pylist()
    chosen: list[tuple[str, str, str]] = []
    taken: set[int] = set()

    def pick(variant: str, fits: Callable[[int], bool]) -> list[int]:
        out = [clean[j] for j in order if clean[j] not in taken and fits(position[codes[clean[j]]])][:k]
        taken.update(out)
        chosen.extend((codes[i], ids[i], variant) for i in out)
        return [position[codes[i]] for i in out]

    for row in pick("upper_case", lambda r: names[r] != names[r].upper()):
        names[row] = names[row].upper()
    for row in pick("legal_form_punctuation", lambda r: "Sdn Bhd" in names[r] or "Sdn. Bhd." in names[r]):
        name = names[row]
        names[row] = (
            name.replace("Sdn Bhd", "SDN. BHD.")
            if "Sdn Bhd" in name
            else name.replace("Sdn. Bhd.", "Sdn Bhd")
        )
    for row in pick("phone_international", lambda r: _local_digits(tels[r]) is not None):
        digits = _local_digits(tels[row]) or ""
        written = tels[row].strip()
        tels[row] = (
            f"0{digits[1:3]}-{digits[3:]}"
            if written.startswith(("+", "6"))
            else f"+6{digits[:2]}-{digits[2:]}"
        )
    for row in pick("quarantined_currency", lambda r: True):
        currencies[row] = "XYZ"
    for name, values in (("CusName", names), ("Tel", tels), ("CurCode", currencies)):
        index = skybiz.schema.get_field_index(name)
        skybiz = skybiz.set_column(index, skybiz.schema.field(name), pa.array(values, pa.string()))
    truth = pa.table(
        {
            "skybiz_code": pa.array([c for c, _, _ in chosen], pa.string()),
            "smartacc_id": pa.array([s for _, s, _ in chosen], pa.string()),
            "variant": pa.array([v for _, _, v in chosen], pa.string()),
        }
    ).sort_by("skybiz_code")
    quarantined = [c for c, _, v in chosen if v == "quarantined_currency"]
    defects = pa.table(
        {
            "system": pa.array(["skybiz"] * len(quarantined), pa.string()),
            "id": pa.array(quarantined, pa.string()),
            "field": pa.array(["CurCode"] * len(quarantined), pa.string()),
            "defect": pa.array(["currency_unknown"] * len(quarantined), pa.string()),
        }
    )
    return skybiz, truth, defects


def _no_defects() -> pa.Table:
    empty = pa.array([], pa.string())
    return pa.table({"system": empty, "id": empty, "field": empty, "defect": empty})


def _local_digits(phone: str | None) -> str | None:
    """A Malaysian number's digits in trunk form (``0321421234``), or ``None`` if it is not one."""
    if not phone or "x" in phone.lower():
        return None
    digits = "".join(ch for ch in phone if ch.isdigit())
    if digits.startswith("60"):
        digits = "0" + digits[2:]
    return digits if digits.startswith("0") and 9 <= len(digits) <= 11 else None


def history_bounds(data: SandboxData) -> tuple[datetime, datetime]:
    """First and last possible modification wall times of ``data`` (naive, Malaysia)."""
    return (
        datetime.combine(data.history_start, datetime.min.time()),
        datetime.combine(data.history_end + timedelta(days=1), datetime.min.time()) - timedelta(seconds=1),
    )
