"""The desktop's server-side words in the page's language: English is the source, and a
Russian page (it sends ``Accept-Language: ru``) gets these. ``say(lang, english, **values)``."""

from __future__ import annotations

from aiohttp import web

RU = {
    # (call reasons and offer texts come from the catalog, per language: its reasons: and locales:)
    # why an offer is there (explain.py)
    "Control group: the most valuable eligible offer": "Контрольная группа: самое ценное из доступных предложений",
    "Control group: drawn at random among {n} eligible offers":
        "Контрольная группа: выбрано случайно из {n} доступных предложений",
    "A close call: the model rates {fav} about as high for this caller (p = {pf} against {p} for {name}); "
    "either could be shown": "Почти равный выбор: модель оценивает «{fav}» для этого абонента почти так же "
                             "(p = {pf} против {p} у «{name}»); показать можно любое",
    "The model prefers {fav} for this caller (p = {pf}{where}); {name} is shown less often (p = {p}), to keep "
    "learning what callers like this one take": "Модель предпочитает для этого абонента «{fav}» (p = {pf}{where}); "
                                                "«{name}» показывается реже (p = {p}), чтобы модель продолжала "
                                                "узнавать, что выбирают такие абоненты",
    ", offered in slot {slot}": ", предложено на месте {slot}",
    "Slot {slot}: the model's top choice among the {left} offers not shown above (p = {p} given them)":
        "Место {slot}: лучший выбор модели среди {left} предложений, не показанных выше (p = {p} среди них)",
    "Slot {slot}: the baseline's draw among the {left} offers not shown above (p = {p} given them)":
        "Место {slot}: случайный выбор среди {left} предложений, не показанных выше (p = {p} среди них)",
    "Not shown: next by the model's probability": "Не показано: следующее по вероятности модели",
    "Not shown: next by the baseline's probability": "Не показано: следующее по вероятности базового выбора",
    "fits the call reason \u201c{reason}\u201d": "подходит к причине звонка «{reason}»",
    "eligible: {rule}": "условие: {rule}",
    "The model rates these offers alike so far: drawn at random among them":
        "Модель пока оценивает эти предложения одинаково: выбрано случайно",
    "An exploration draw: the model tries it now and then to keep learning":
        "Исследование: модель иногда пробует это предложение, чтобы продолжать учиться",
    "The model's top choice for this caller calling about \u201c{reason}\u201d":
        "Лучший выбор модели для этого абонента с причиной «{reason}»",
    "The model's top choice for this caller": "Лучший выбор модели для этого абонента",
    "The model's first choice for this caller, by a small margin (p = {p})":
        "Первый выбор модели для этого абонента, с небольшим перевесом (p = {p})",
    # numbers and refusals (desk.py, api.py)
    "Enter the caller's number.": "Введите номер абонента.",
    "A subscriber id has at most 256 characters.": "Идентификатор абонента — не больше 256 символов.",
    "e.g. 8 987 739-80-22 or +7 987 739 80 22": "например 8 987 739-80-22 или +7 987 739 80 22",
    "with its country code, e.g. +44\u2026": "с кодом страны, например +44\u2026",
    "\u201c{text}\u201d is not a phone number: type the caller's number, {example}.":
        "«{text}» — не номер телефона: введите номер абонента, {example}.",
    "\u201c{text}\u201d has no country code we know: {example}.": "У «{text}» неизвестный код страны: {example}.",
    "\u201c{text}\u201d is {why}: check the caller's number, {example}.":
        "«{text}»: {why}. Проверьте номер абонента, {example}.",
    "too short": "слишком короткий номер", "too long": "слишком длинный номер",
    "not the length of a number there": "неверная длина номера", "a local number only": "это только местный номер",
    "not a number in use": "такого номера не бывает",
    "these offers were made to another caller: nothing was recorded. Ask for the next best action for this caller.":
        "эти предложения были сделаны другому абоненту: ничего не записано. Запросите лучшее предложение для "
        "этого абонента.",
    "Choose the call reason from the list.": "Выберите причину звонка из списка.",
    "What the caller says is too long: keep it under 1,000 characters.":
        "Слишком длинная заметка: не больше 1000 символов.",
    "That is not a number we can look up: type the caller's number.":
        "По такому номеру ничего не найти: введите номер абонента.",
    "Choose the call reason, or write down what the caller says.": "Выберите причину звонка или запишите, что говорит абонент.",
    "\u201c{reason}\u201d is not a call reason of the catalog: choose one from the list.":
        "«{reason}» — нет такой причины звонка в каталоге: выберите причину из списка.",
    "A reason goes with a decline only.": "Причина указывается только при отказе.",
    "\u201c{reason}\u201d is not a decline reason of the catalog: choose one from the list.":
        "«{reason}» — нет такой причины отказа в каталоге: выберите причину из списка.",
}
LANGUAGES = {"ru": RU}


def language(request: web.Request) -> str:
    """The page's language, which the desktop sends as Accept-Language ("ru" or "en")."""
    first = request.headers.get("Accept-Language", "").split(",")[0].strip().lower()
    return "ru" if first.startswith("ru") else "en"


def say(lang: str, english: str, /, **values: object) -> str:
    return LANGUAGES.get(lang, {}).get(english, english).format(**values)
