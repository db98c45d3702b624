"""The 43 territorial police forces of England and Wales (less the British Transport Police).

Each is (name, short name used in area and team names, approximate officer headcount): the synthetic
generator sizes its forces by headcount, and the Home Office tables' short names are matched to these
full names (lib/analysis/reference.py).
"""
from __future__ import annotations

# The Met is weighted up a little from its real ~23% so that it carries about a quarter of the national data.
FORCES: tuple[tuple[str, str, int], ...] = (
    ("Metropolitan Police", "Met", 38000),
    ("Greater Manchester Police", "GMP", 8000),
    ("West Midlands Police", "WMP", 7500),
    ("West Yorkshire Police", "WYP", 6000),
    ("Thames Valley Police", "TVP", 5000),
    ("Kent Police", "Kent", 4200),
    ("Merseyside Police", "Merseyside", 4100),
    ("Essex Police", "Essex", 3800),
    ("Northumbria Police", "Northumbria", 3700),
    ("Devon and Cornwall Police", "D&C", 3700),
    ("South Wales Police", "SWP", 3600),
    ("Hampshire and Isle of Wight Constabulary", "Hampshire", 3500),
    ("Lancashire Constabulary", "Lancashire", 3500),
    ("Avon and Somerset Police", "A&S", 3200),
    ("Sussex Police", "Sussex", 3200),
    ("South Yorkshire Police", "SYP", 3100),
    ("West Mercia Police", "West Mercia", 2600),
    ("Nottinghamshire Police", "Notts", 2500),
    ("Leicestershire Police", "Leics", 2400),
    ("Hertfordshire Constabulary", "Herts", 2300),
    ("Cheshire Constabulary", "Cheshire", 2300),
    ("Surrey Police", "Surrey", 2200),
    ("Humberside Police", "Humberside", 2200),
    ("Derbyshire Constabulary", "Derbyshire", 2000),
    ("Staffordshire Police", "Staffs", 1900),
    ("Norfolk Constabulary", "Norfolk", 1900),
    ("Cambridgeshire Constabulary", "Cambs", 1700),
    ("North Yorkshire Police", "NYP", 1650),
    ("North Wales Police", "NWP", 1650),
    ("Northamptonshire Police", "Northants", 1500),
    ("Gwent Police", "Gwent", 1500),
    ("Cleveland Police", "Cleveland", 1500),
    ("Bedfordshire Police", "Beds", 1400),
    ("Suffolk Constabulary", "Suffolk", 1400),
    ("Dorset Police", "Dorset", 1400),
    ("Durham Constabulary", "Durham", 1300),
    ("Gloucestershire Constabulary", "Glos", 1300),
    ("Cumbria Constabulary", "Cumbria", 1300),
    ("Dyfed-Powys Police", "Dyfed-Powys", 1300),
    ("Lincolnshire Police", "Lincs", 1200),
    ("Wiltshire Police", "Wiltshire", 1100),
    ("Warwickshire Police", "Warwks", 1100),
    ("City of London Police", "CoLP", 950),
)

