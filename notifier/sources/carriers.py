"""Carriers as buyers know them, from the slugs tracking services and plugins store.

One table for every source: AfterShip's courier slugs and the WooCommerce tracking plugins'
provider slugs (the sanitized provider name) name the same carriers the same way.
"""

from __future__ import annotations

from urllib.parse import quote

NAMES = {
    "4px": "4PX",
    "an-post": "An Post",
    "aramex": "Aramex",
    "australia-post": "Australia Post",
    "bpost": "bpost",
    "bring-se": "Bring",
    "brt-bartolini": "BRT",
    "cainiao": "Cainiao",
    "canada-post": "Canada Post",
    "ceska-posta": "Česká pošta",
    "china-ems": "China EMS",
    "china-post": "China Post",
    "colissimo": "Colissimo",
    "correios": "Correios",
    "correos": "Correos",
    "courier-post": "CourierPost",
    "db-schenker": "DB Schenker",
    "deutsch-post": "Deutsche Post",
    "deutsche-post": "Deutsche Post",
    "deutsche-post-dhl": "Deutsche Post DHL",
    "dhl": "DHL",
    "dhl-at": "DHL Austria",
    "dhl-cz": "DHL Czech Republic",
    "dhl-express": "DHL Express",
    "dhl-germany": "DHL",
    "dhl-global-mail": "DHL eCommerce",
    "dhl-intraship-de": "DHL",
    "dhl-paket": "DHL Paket",
    "dhl-us": "DHL eCommerce",
    "dpd": "DPD",
    "dpd-at": "DPD Austria",
    "dpd-co-uk": "DPD UK",
    "dpd-cz": "DPD Czech Republic",
    "dpd-de": "DPD",
    "dpd-ie": "DPD Ireland",
    "dpd-nl": "DPD Netherlands",
    "dtdc": "DTDC",
    "evri": "Evri",
    "fastway-couriers": "Fastway Couriers",
    "fedex": "FedEx",
    "fedex-sameday": "FedEx SameDay",
    "gls": "GLS",
    "hermes": "Hermes",
    "hermes-de": "Hermes",
    "inpost": "InPost",
    "itella": "Posti",
    "japan-post": "Japan Post",
    "la-poste": "La Poste",
    "la-poste-colissimo": "Colissimo",
    "nz-post": "NZ Post",
    "ontrac": "OnTrac",
    "parcelforce": "Parcelforce Worldwide",
    "poczta-polska": "Poczta Polska",
    "post-at": "Österreichische Post",
    "poste-italiane": "Poste Italiane",
    "postnl": "PostNL",
    "postnl-3s": "PostNL",
    "postnord": "PostNord",
    "postnord-sverige-ab": "PostNord",
    "ppl-cz": "PPL",
    "purolator": "Purolator",
    "royal-mail": "Royal Mail",
    "sagawa": "Sagawa",
    "sf-express": "SF Express",
    "swiss-post": "Swiss Post",
    "tnt": "TNT",
    "ups": "UPS",
    "ups-germany": "UPS",
    "usps": "USPS",
    "yamato": "Yamato",
    "yanwen": "Yanwen",
    "yunexpress": "YunExpress",
}

# Tracking pages that need nothing but the tracking number (PostNL and others want a postcode).
TRACKING_LINKS = {
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
    "ups": "https://www.ups.com/track?tracknum={}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={}",
    "dhl": "https://www.dhl.com/global-en/home/tracking.html?tracking-id={}",
    "deutsche-post-dhl": "https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html?piececode={}",
    "deutsche-post": "https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html?piececode={}",
    "dhl-intraship-de": "https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html?piececode={}",
    "royal-mail": "https://www.royalmail.com/track-your-item#/tracking-results/{}",
    "australia-post": "https://auspost.com.au/mypost/track/details/{}",
    "canada-post": "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor={}",
}


def name(slug: str) -> str:
    """The carrier's name for a slug; an unknown one is spelled out ("korea-post": "Korea Post")."""
    known = NAMES.get(slug.lower())
    if known:
        return known
    return " ".join(part.capitalize() for part in slug.replace("_", "-").split("-") if part)[:200]


def tracking_link(slug: str, number: str) -> str | None:
    """The carrier's tracking page for a number, where the number alone is enough."""
    template = TRACKING_LINKS.get(slug.lower())
    return template.format(quote(number, safe="")) if template else None
