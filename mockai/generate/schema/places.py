"""Places a message names, for place-like properties (`city`, `country`, `state`, `destination`).

"Alice and Bob are meeting in Paris" must give `{"city": "Paris"}`, not the first capitalised
word ("Alice"), and "Biggest city in Japan?" must not give `{"city": "Biggest"}`. The names in a
message are its runs of capitalised words (question words, greetings and leading verbs dropped);
which one a property takes:

1. a place this module knows of the property's kind (a small gazetteer: countries with their
   capitals, large cities, US states and other first-level regions), in message order;
2. for a city, a name introduced as a place (`in`, `at`, `to`, `from`, `near`, ...) that is
   neither a known place of another kind nor a common first name ("send it to Alice"), or a
   hyphenated place name (`Stratford-upon-Avon`);
3. derived from a known place of the other kind: the capital of the country the message names
   (`city` for "Biggest city in Japan?" is Tokyo), the country of the city it names.

A property that says where a trip starts or ends (`origin`, `from_city`, `destination`,
`arrival_city`) takes the name after `from` or after `to` first. Nothing found: the caller
generates a plausible place (never a random capitalised word from the question).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from mockai.generate.schema.names import name_tokens

PLACE_KINDS = frozenset({"city", "country", "state"})

# A run of capitalised words ("Paris", "New York", "São Paulo", "Rio de Janeiro", "Stratford-
# upon-Avon"), joined by spaces or hyphens and the particles place names carry.
_PARTICLES = frozenset(
    {"de", "da", "do", "del", "della", "di", "du", "la", "le", "les", "von", "van", "of", "upon",
     "on", "am", "sur", "en"}
)  # fmt: skip
_PARTICLE = rf"(?:[ -](?:{'|'.join(sorted(_PARTICLES))}))*"
_APOSTROPHES = "'\u2019"
_PROPER_NAME = re.compile(
    rf"\b[A-Z][\w{_APOSTROPHES}]*(?:{_PARTICLE}[ -][A-Z][\w{_APOSTROPHES}]*)*"
)
_HYPHENATED_PLACE = re.compile(r"-(?:upon|on|sur|en|le|la|am|de|du|des|under|in)-")
# The word before a name that makes it a place: "in Paris", "to the Netherlands".
_BEFORE = re.compile(r"([A-Za-z]+)\s+(?:the\s+)?$")
_PLACE_PREPOSITIONS = frozenset(
    {"in", "at", "to", "from", "near", "around", "into", "via", "of", "towards", "toward",
     "visit", "visiting", "outside", "inside", "across", "through", "for", "between", "and"}
)  # fmt: skip
_FROM_WORDS = frozenset({"from", "origin", "source", "departure", "depart", "start", "home"})
_TO_WORDS = frozenset({"to", "destination", "dest", "arrival", "arrive", "target", "end"})
# Capitalised words that are not names, whatever their position: question words, pronouns,
# greetings, and the verbs a request starts with.
_NOT_NAME_WORDS = (
    "I I'm I've I'd I'll Is Are Was Were Will What What's Whats When Where Which Who Why How Can "
    "Could Would Should Do Does Did Please Tell Give Show Find Get The A An And Or In On At For "
    "To From Hi Hello Hey Thanks Thank Today Tomorrow Yesterday Now Also Then Weather Compare "
    "Check Look Search Book Plan List Send Create Call Use Write Summarize Summarise Translate "
    "Explain Describe Let Let's Lets Help Need My Our Your Their His Her Its This That These "
    "Those There Here It It's We You He She They Any Some Is Whether Biggest Largest Smallest "
    "Best Capital City Country Name Extract Return Answer Respond Make Sure Always Don't Be Ask "
    "Remind Schedule Email Message Text Meet Visit Add Update Delete Remove Open Close Start Stop "
    "Buy Order Cancel"
)
# Capitalised words that end a place name rather than continue it ("Paris on Friday").
_DATE_WORDS = (
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May "
    "June July August September October November December Christmas Easter"
)
_NOT_NAMES = frozenset(_NOT_NAME_WORDS.split()) | frozenset(_DATE_WORDS.split())


@dataclass(frozen=True, slots=True)
class Mention:
    """A proper name in a message, and the word before it (lowercased; "" at the start)."""

    name: str
    before: str


def place_for(kind: str, property_name: str, message: str) -> str | None:
    """The place `message` names for a property of `kind` (city / country / state), or None."""
    mentions = mentioned_names(message)
    if not mentions:
        return None
    tokens = set(name_tokens(property_name))
    if tokens & _FROM_WORDS:
        mentions = _prefer_after(mentions, "from")
    elif tokens & _TO_WORDS:
        mentions = _prefer_after(mentions, "to")
    return _place_in(kind, mentions)


@lru_cache(maxsize=512)
def mentioned_names(message: str) -> tuple[Mention, ...]:
    """The proper names `message` mentions, in order ("What's the weather in New York?" ->
    "New York"): capitalised words, without question words, greetings and leading verbs."""
    found: list[Mention] = []
    for match in _PROPER_NAME.finditer(message):
        words = match.group().replace("-", " ").split()
        while words and words[0] in _NOT_NAMES:
            words.pop(0)
        while words and (words[-1] in _NOT_NAMES or words[-1] in _PARTICLES):
            words.pop()
        if not words:
            continue
        start = match.start() + match.group().find(words[0])
        end = match.start() + match.group().rfind(words[-1]) + len(words[-1])
        name = message[start:end].rstrip(_APOSTROPHES)
        if name.endswith(("'s", "\u2019s")):
            name = name[:-2]
        before = _BEFORE.search(message, max(0, start - 32), start)  # linear in the message
        found.append(Mention(name, before.group(1).lower() if before else ""))
    return tuple(found)


def _prefer_after(mentions: tuple[Mention, ...], word: str) -> tuple[Mention, ...]:
    first = [m for m in mentions if m.before == word]
    return (*first, *(m for m in mentions if m.before != word))


def _place_in(kind: str, mentions: tuple[Mention, ...]) -> str | None:
    table = gazetteer()
    for mention in mentions:
        if kind in table.kinds_of(mention.name):
            return mention.name
    if kind == "city":  # towns are the open class: an unknown name can be one
        for mention in mentions:
            if (
                mention.before in _PLACE_PREPOSITIONS
                and not table.kinds_of(mention.name)
                and mention.name.split()[0] not in table.first_names
            ) or _HYPHENATED_PLACE.search(mention.name):
                return mention.name
        for mention in mentions:
            capital = table.capitals.get(mention.name)
            if capital is not None:
                return capital
    if kind == "country":
        for mention in mentions:
            country = table.countries.get(mention.name)
            if country is not None:
                return country
    return None


# --- the gazetteer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gazetteer:
    capitals: dict[str, str]  # country (and its other names) -> capital
    countries: dict[str, str]  # city -> its country
    states: frozenset[str]
    first_names: frozenset[str]  # common first names that are no place

    def kinds_of(self, name: str) -> frozenset[str]:
        kinds = set()
        if name in self.capitals:
            kinds.add("country")
        if name in self.countries:
            kinds.add("city")
        if name in self.states:
            kinds.add("state")
        return frozenset(kinds)


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """Built on first use (not at import): a few hundred names, parsed from the tables below."""
    capitals: dict[str, str] = {}
    countries: dict[str, str] = {}
    for line in _COUNTRIES.strip().splitlines():
        names, capital = line.split(":")
        canonical, *aliases = names.split("|")
        for name in (canonical, *aliases):
            capitals[name] = capital
        countries.setdefault(capital, canonical)
    for line in _CITIES.strip().splitlines():
        country, cities = line.split(":")
        for city in cities.split(","):
            countries.setdefault(city.strip(), country)
    states = frozenset(name.strip() for name in _STATES.split(","))
    places = set(capitals) | set(countries) | states
    first_names = frozenset(_FIRST_NAMES.split()) - places
    return Gazetteer(capitals, countries, states, first_names)


# Country|other names:capital.
_COUNTRIES = """
Afghanistan:Kabul
Albania:Tirana
Algeria:Algiers
Andorra:Andorra la Vella
Angola:Luanda
Argentina:Buenos Aires
Armenia:Yerevan
Australia:Canberra
Austria:Vienna
Azerbaijan:Baku
Bahamas:Nassau
Bahrain:Manama
Bangladesh:Dhaka
Barbados:Bridgetown
Belarus:Minsk
Belgium:Brussels
Belize:Belmopan
Benin:Porto-Novo
Bhutan:Thimphu
Bolivia:Sucre
Bosnia and Herzegovina|Bosnia:Sarajevo
Botswana:Gaborone
Brazil:Brasília
Brunei:Bandar Seri Begawan
Bulgaria:Sofia
Burkina Faso:Ouagadougou
Burundi:Gitega
Cambodia:Phnom Penh
Cameroon:Yaoundé
Canada:Ottawa
Cape Verde:Praia
Central African Republic:Bangui
Chad:N'Djamena
Chile:Santiago
China:Beijing
Colombia:Bogotá
Comoros:Moroni
Costa Rica:San José
Croatia:Zagreb
Cuba:Havana
Cyprus:Nicosia
Czech Republic|Czechia:Prague
Democratic Republic of the Congo|DRC:Kinshasa
Republic of the Congo|Congo:Brazzaville
Denmark:Copenhagen
Djibouti:Djibouti
Dominican Republic:Santo Domingo
Ecuador:Quito
Egypt:Cairo
El Salvador:San Salvador
Equatorial Guinea:Malabo
Eritrea:Asmara
Estonia:Tallinn
Eswatini|Swaziland:Mbabane
Ethiopia:Addis Ababa
Fiji:Suva
Finland:Helsinki
France:Paris
Gabon:Libreville
Gambia:Banjul
Georgia:Tbilisi
Germany:Berlin
Ghana:Accra
Greece:Athens
Guatemala:Guatemala City
Guinea:Conakry
Guyana:Georgetown
Haiti:Port-au-Prince
Honduras:Tegucigalpa
Hungary:Budapest
Iceland:Reykjavik
India:New Delhi
Indonesia:Jakarta
Iran:Tehran
Iraq:Baghdad
Ireland:Dublin
Israel:Jerusalem
Italy:Rome
Ivory Coast|Côte d'Ivoire:Yamoussoukro
Jamaica:Kingston
Japan:Tokyo
Jordan:Amman
Kazakhstan:Astana
Kenya:Nairobi
Kosovo:Pristina
Kuwait:Kuwait City
Kyrgyzstan:Bishkek
Laos:Vientiane
Latvia:Riga
Lebanon:Beirut
Lesotho:Maseru
Liberia:Monrovia
Libya:Tripoli
Liechtenstein:Vaduz
Lithuania:Vilnius
Luxembourg:Luxembourg
Madagascar:Antananarivo
Malawi:Lilongwe
Malaysia:Kuala Lumpur
Maldives:Malé
Mali:Bamako
Malta:Valletta
Mauritania:Nouakchott
Mauritius:Port Louis
Mexico:Mexico City
Moldova:Chișinău
Monaco:Monaco
Mongolia:Ulaanbaatar
Montenegro:Podgorica
Morocco:Rabat
Mozambique:Maputo
Myanmar|Burma:Naypyidaw
Namibia:Windhoek
Nepal:Kathmandu
Netherlands|Holland:Amsterdam
New Zealand:Wellington
Nicaragua:Managua
Niger:Niamey
Nigeria:Abuja
North Korea:Pyongyang
North Macedonia|Macedonia:Skopje
Norway:Oslo
Oman:Muscat
Pakistan:Islamabad
Panama:Panama City
Papua New Guinea:Port Moresby
Paraguay:Asunción
Peru:Lima
Philippines:Manila
Poland:Warsaw
Portugal:Lisbon
Qatar:Doha
Romania:Bucharest
Russia:Moscow
Rwanda:Kigali
Saudi Arabia:Riyadh
Senegal:Dakar
Serbia:Belgrade
Sierra Leone:Freetown
Singapore:Singapore
Slovakia:Bratislava
Slovenia:Ljubljana
Somalia:Mogadishu
South Africa:Pretoria
South Korea|Korea:Seoul
South Sudan:Juba
Spain:Madrid
Sri Lanka:Colombo
Sudan:Khartoum
Suriname:Paramaribo
Sweden:Stockholm
Switzerland:Bern
Syria:Damascus
Taiwan:Taipei
Tajikistan:Dushanbe
Tanzania:Dodoma
Thailand:Bangkok
Togo:Lomé
Trinidad and Tobago:Port of Spain
Tunisia:Tunis
Turkey|Türkiye:Ankara
Turkmenistan:Ashgabat
Uganda:Kampala
Ukraine:Kyiv
United Arab Emirates|UAE:Abu Dhabi
United Kingdom|UK|Britain|Great Britain|England:London
Scotland:Edinburgh
Wales:Cardiff
Northern Ireland:Belfast
United States|United States of America|USA|US|America:Washington, D.C.
Uruguay:Montevideo
Uzbekistan:Tashkent
Venezuela:Caracas
Vietnam|Viet Nam:Hanoi
Yemen:Sanaa
Zambia:Lusaka
Zimbabwe:Harare
"""

# Country: large cities that are not its capital (a country may take several lines).
_CITIES = """
United States: New York, New York City, NYC, Los Angeles, Chicago, Houston, Phoenix, Philadelphia
United States: San Antonio, San Diego, Dallas, San Francisco, Seattle, Boston, Miami, Atlanta
United States: Denver, Austin, Las Vegas, Portland, Detroit, Nashville, New Orleans, Orlando
United States: Minneapolis, Pittsburgh, Honolulu, Washington
Canada: Toronto, Montreal, Vancouver, Calgary, Edmonton, Quebec City
Mexico: Guadalajara, Monterrey, Cancún, Cancun, Tijuana
Brazil: São Paulo, Sao Paulo, Rio de Janeiro, Salvador, Recife, Porto Alegre
Argentina: Córdoba, Rosario, Mendoza
Colombia: Medellín, Medellin, Cali, Cartagena
Peru: Cusco
Chile: Valparaíso
Australia: Sydney, Melbourne, Brisbane, Perth, Adelaide
New Zealand: Auckland, Christchurch
United Kingdom: Manchester, Liverpool, Birmingham, Glasgow, Leeds, Bristol, Oxford, Cambridge
Ireland: Cork, Galway
France: Lyon, Marseille, Nice, Bordeaux, Toulouse, Lille, Strasbourg, Nantes
Germany: Munich, Hamburg, Frankfurt, Cologne, Stuttgart, Düsseldorf, Dresden, Leipzig
Italy: Milan, Naples, Florence, Venice, Turin, Bologna, Palermo
Spain: Barcelona, Seville, Valencia, Bilbao, Málaga, Malaga
Portugal: Porto, Faro
Netherlands: Rotterdam, The Hague, Utrecht
Belgium: Antwerp, Ghent, Bruges
Switzerland: Zurich, Zürich, Geneva, Basel, Lausanne
Austria: Salzburg, Innsbruck
Poland: Kraków, Krakow, Gdańsk, Gdansk, Wrocław
Czech Republic: Brno
Sweden: Gothenburg, Malmö
Norway: Bergen
Denmark: Aarhus
Finland: Tampere
Russia: Saint Petersburg, St. Petersburg, Novosibirsk
Ukraine: Kharkiv, Odesa, Odessa, Lviv
Turkey: Istanbul, Izmir, Antalya
Greece: Thessaloniki
China: Shanghai, Hong Kong, Shenzhen, Guangzhou, Chengdu, Wuhan, Xi'an
Japan: Osaka, Kyoto, Yokohama, Nagoya, Sapporo, Fukuoka, Kobe
South Korea: Busan, Incheon
India: Mumbai, Bangalore, Bengaluru, Kolkata, Chennai, Hyderabad, Pune, Ahmedabad, Jaipur, Delhi
Pakistan: Karachi, Lahore
Bangladesh: Chittagong
Vietnam: Ho Chi Minh City, Saigon, Da Nang
Thailand: Chiang Mai, Phuket
Indonesia: Surabaya, Bali, Bandung
Philippines: Cebu, Quezon City
Malaysia: Penang
United Arab Emirates: Dubai, Sharjah
Saudi Arabia: Jeddah, Mecca, Medina
Israel: Tel Aviv, Haifa
Egypt: Alexandria, Giza, Luxor
Morocco: Casablanca, Marrakesh, Marrakech, Fez, Tangier
Nigeria: Lagos, Kano
Kenya: Mombasa
South Africa: Johannesburg, Cape Town, Durban
Ethiopia: Dire Dawa
Ghana: Kumasi
Tanzania: Dar es Salaam, Zanzibar
"""

_STATES = """
Alabama, Alaska, Arizona, Arkansas, California, Colorado, Connecticut, Delaware, Florida, Georgia,
Hawaii, Idaho, Illinois, Indiana, Iowa, Kansas, Kentucky, Louisiana, Maine, Maryland,
Massachusetts, Michigan, Minnesota, Mississippi, Missouri, Montana, Nebraska, Nevada,
New Hampshire, New Jersey, New Mexico, New York, North Carolina, North Dakota, Ohio, Oklahoma,
Oregon, Pennsylvania, Rhode Island, South Carolina, South Dakota, Tennessee, Texas, Utah, Vermont,
Virginia, Washington, West Virginia, Wisconsin, Wyoming, Ontario, Quebec, British Columbia,
Alberta, Manitoba, Nova Scotia, New South Wales, Victoria, Queensland, Tasmania, Bavaria,
Catalonia, Andalusia, Tuscany, Lombardy, Sicily, Normandy, Brittany, Provence, Scotland, Wales
"""

# First names common enough to be mistaken for places after "to" / "with" ("send it to Alice").
_FIRST_NAMES = """
Alice Bob Carol Dave David Eve Frank Grace Heidi Ivan Judy Mallory Oscar Peggy Trent Victor
Walter John Jane Mary James Robert Michael William Richard Joseph Thomas Charles Chris Daniel
Matthew Anthony Mark Paul Steven Andrew Joshua Kevin Brian George Edward Ronald Timothy Jason
Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin Samuel
Gregory Alexander Patrick Jack Dennis Jerry Tyler Aaron Henry Adam Peter Nathan Kyle Noah Ethan
Liam Lucas Mason Oliver Elijah Logan Emma Olivia Ava Sophia Isabella Mia Amelia Harper Evelyn
Abigail Emily Elizabeth Sofia Ella Avery Scarlett Lily Hannah Chloe Zoe Nora Riley Anna Sarah
Linda Barbara Susan Jessica Karen Nancy Lisa Betty Sandra Ashley Kimberly Donna Michelle Laura
Amy Angela Melissa Rebecca Stephanie Sharon Kathleen Cynthia Ruth Anne Tom Tim Sam Ben Max Leo
Lucy Kate Tina Nina Maria Marie Sara Julia Laura Claire Alex Taylor Morgan Jamie Pat Jordan Sean
Ahmed Mohamed Ali Fatima Wei Chen Yuki Hiro Raj Priya Carlos Juan Luis Ana Pedro Miguel Sofia
"""
