"""Turn what a person types ("乌鲁木齐", "London", "+8", "UTC-5") into an IANA time zone."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CITIES = {
    "北京": "Asia/Shanghai", "beijing": "Asia/Shanghai", "上海": "Asia/Shanghai", "shanghai": "Asia/Shanghai",
    "广州": "Asia/Shanghai", "guangzhou": "Asia/Shanghai", "深圳": "Asia/Shanghai", "shenzhen": "Asia/Shanghai",
    "成都": "Asia/Shanghai", "chengdu": "Asia/Shanghai", "重庆": "Asia/Shanghai", "武汉": "Asia/Shanghai",
    "西安": "Asia/Shanghai", "杭州": "Asia/Shanghai", "南京": "Asia/Shanghai", "china": "Asia/Shanghai",
    "中国": "Asia/Shanghai", "乌鲁木齐": "Asia/Urumqi", "urumqi": "Asia/Urumqi", "新疆": "Asia/Urumqi",
    "拉萨": "Asia/Shanghai", "香港": "Asia/Hong_Kong", "hong kong": "Asia/Hong_Kong", "澳门": "Asia/Macau",
    "台北": "Asia/Taipei", "taipei": "Asia/Taipei", "新加坡": "Asia/Singapore", "singapore": "Asia/Singapore",
    "东京": "Asia/Tokyo", "tokyo": "Asia/Tokyo", "首尔": "Asia/Seoul", "seoul": "Asia/Seoul",
    "伦敦": "Europe/London", "london": "Europe/London", "巴黎": "Europe/Paris", "paris": "Europe/Paris",
    "柏林": "Europe/Berlin", "berlin": "Europe/Berlin", "莫斯科": "Europe/Moscow", "moscow": "Europe/Moscow",
    "迪拜": "Asia/Dubai", "dubai": "Asia/Dubai", "悉尼": "Australia/Sydney", "sydney": "Australia/Sydney",
    "纽约": "America/New_York", "new york": "America/New_York", "洛杉矶": "America/Los_Angeles",
    "los angeles": "America/Los_Angeles", "温哥华": "America/Vancouver", "vancouver": "America/Vancouver",
    "多伦多": "America/Toronto", "toronto": "America/Toronto",
}
_OFFSET = re.compile(r"^(?:utc|gmt)?\s*([+-])\s*(\d{1,2})(?::?00)?$", re.IGNORECASE)


def resolve_timezone(text: str) -> str | None:
    value = text.strip()
    key = value.lower()
    if key in CITIES:
        return CITIES[key]
    match = _OFFSET.match(key)
    if match:
        hours = int(match[2])
        if hours > 14:
            return None
        if hours == 0:
            return "Etc/UTC"
        # POSIX Etc zones have the sign inverted: UTC+8 is Etc/GMT-8.
        return f"Etc/GMT{'-' if match[1] == '+' else '+'}{hours}"
    if "/" in value:
        try:
            ZoneInfo(value)
            return value
        except (ZoneInfoNotFoundError, ValueError):
            return None
    return None
