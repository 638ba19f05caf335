// nextbest UI: the agent desktop's words in Russian. English is the source: t("Accept")
// is "Accept" on an English page and "Принять" on a Russian one; {name} fills a value in.
// The language: ?lang=ru|en, else the one chosen last on this browser, else English.
"use strict";

const NB_WORDS = {
  ru: {
    // static page
    "Agent desktop · nextbest": "Рабочее место оператора · nextbest",
    "Incoming call": "Входящий звонок", "New call": "Новый звонок", "Subscriber number": "Номер абонента",
    "Call reason": "Причина звонка", "— choose the reason —": "— выберите причину —",
    "Long-distance calls are expensive": "Дорогие междугородние звонки", "Balance vanished": "Пропали деньги со счёта",
    "Going abroad / roaming": "Поездка за границу / роуминг", "Slow mobile internet": "Медленный мобильный интернет",
    "SMS cost": "Стоимость SMS", "Child safety": "Безопасность ребёнка", "International calls": "Международные звонки",
    "Tariff question": "Вопрос о тарифе", "What the caller says": "Что говорит абонент", "(optional)": "(необязательно)",
    "e.g. called a friend in another city, the money is gone": "например: звонила подруге в другой город, деньги пропали",
    "Next best action": "Лучшее предложение", "Caller": "Абонент", "Recent contacts": "Последние обращения",
    "Also pitch": "Предложить также", "None yet.": "Пока нет.",
    "Enter the number to see who is calling.": "Введите номер, чтобы увидеть, кто звонит.",
    "The best offer for this caller appears here.": "Здесь появится лучшее предложение для абонента.",
    "The 2nd and 3rd best offers appear here: each has its own answer.":
      "Здесь появятся 2-е и 3-е предложения: у каждого свой ответ.",
    // top bar
    "Agent desktop": "Рабочее место",
    "Dashboard": "Панель маркетолога", "open mode: no API keys configured": "открытый режим: ключи API не заданы",
    "signed in as {name}": "вход: {name}", "Sign out": "Выйти", "English": "English", "Русский": "Русский",
    // caller
    "Tariff": "Тариф", "Balance": "Баланс", "ARPU": "ARPU", "Region": "Регион", "Tenure, months": "Стаж, мес.",
    "Long-distance, min/month": "Междугородние, мин/мес", "International, min/month": "Международные, мин/мес",
    "Roaming days/year": "Дней в роуминге за год", "Mobile data, GB/month": "Мобильный интернет, ГБ/мес",
    "SMS/month": "SMS в месяц", "Top-ups, 30 days": "Пополнений за 30 дней", "Active services": "Подключённые услуги",
    "Usage": "Потребление", "none": "нет",
    "Unknown caller: no profile is stored for this number. ": "Неизвестный абонент: профиля для этого номера нет. ",
    "The decision uses the call reason only.": "Решение учитывает только причину звонка.",
    "No contacts from this desktop yet.": "С этого рабочего места обращений ещё не было.",
    "Note only": "Только заметка", "offered {name} ": "предложено: {name} ",
    "accepted": "принято", "declined": "отказ", "pending": "ждёт ответа", "no answer": "без ответа",
    "expired": "устарело", "dropped": "не показано", "unknown": "неизвестно",
    // offers
    "Offer now": "Предложить сейчас", "Slot {slot}: also pitch": "Место {slot}: предложить также",
    "not shown": "не показано", "control group": "контрольная группа", "model": "модель", "value {value}": "ценность {value}",
    "Accept": "Принять", "Decline": "Отказ", "Not now / call back": "Не сейчас / перезвонить",
    "Accepted": "Принято", "Declined": "Отказ", "Not now: call back": "Не сейчас: перезвонить",
    "Note: {what}.": "Отметка: {what}.",
    "accepted earlier in this call": "уже принято в этом звонке", "declined earlier in this call": "уже отказ в этом звонке",
    "the caller said \u201cnot now\u201d earlier in this call": "в этом звонке абонент уже сказал «не сейчас»",
    "Not now: {name} — nothing is recorded; call back about it. It can still be accepted or declined in this call.":
      "Не сейчас: {name} — ничего не записано; перезвоните по этому предложению. В этом звонке его ещё можно принять или отклонить.",
    "the decision is complete and will be learned": "решение завершено, модель на нём обучится",
    "kept until the other offers have their answer (or the wait ends)":
      "сохранено, пока нет ответов по остальным предложениям (или не истечёт ожидание)",
    "{name}: this outcome was already recorded.": "{name}: этот ответ уже записан.",
    "{word}: {name} — {when}.": "{word}: {name} — {when}.",
    " It will not be offered to this caller again.": " Этому абоненту его больше не предложат.",
    "Too late to record this answer: the decision was closed when its wait for answers ended. If the caller is still on the line, ask for the next best action again.":
      "Слишком поздно: решение закрыто, время ожидания ответа истекло. Если абонент ещё на линии, запросите лучшее предложение снова.",
    "The service no longer knows this decision (it expired). Ask for the next best action again.":
      "Сервис больше не знает это решение (оно устарело). Запросите лучшее предложение снова.",
    "The service cannot be reached: check the connection and press the button again.":
      "Сервис недоступен: проверьте связь и нажмите кнопку ещё раз.",
    "The offers for the previous caller were cleared: ask for the next best action for this caller.":
      "Предложения для предыдущего абонента убраны: запросите лучшее предложение для этого абонента.",
    "just accepted: {names}": "только что приняты: {names}", "just declined: {names}": "только что отклонены: {names}",
    "Left out because the caller answered them in this call \u2014 {parts}.":
      "Не показаны, потому что абонент уже ответил на них в этом звонке \u2014 {parts}.",
    "Decided at {time} · model {version}": "Решение в {time} · модель {version}",
    "No offer is eligible for this caller right now.": "Сейчас этому абоненту нечего предложить.",
    "No other eligible offer.": "Других доступных предложений нет.",
    "Chosen among {n} eligible offers; {m} excluded": "Выбрано из {n} доступных предложений; исключено: {m}",
    "already has it": "уже подключено", "not eligible": "не подходит по условиям", "cap reached": "достигнут лимит",
    "switched off": "выключено", "not offered here": "не для этого канала", "not valid today": "сегодня не действует",
    "declined recently": "недавно отказался", "contacted enough for now": "лимит контактов исчерпан",
  },
};

const NB_I18N = (() => {
  const asked = new URLSearchParams(location.search).get("lang");
  let stored = null;
  try { stored = localStorage.getItem("nextbest.lang"); } catch (err) { stored = null; }
  const lang = asked in NB_WORDS || asked === "en" ? asked : (stored in NB_WORDS ? stored : "en");
  document.documentElement.lang = lang;
  if (asked === lang) remember(lang);

  function remember(next) {
    try { localStorage.setItem("nextbest.lang", next); } catch (err) { /* private mode: this visit only */ }
  }

  function t(text, values) {
    const template = (NB_WORDS[lang] && NB_WORDS[lang][text]) || text;
    return template.replace(/\{(\w+)\}/g, (m, name) => (values && name in values ? String(values[name]) : m));
  }

  // The page's own text: every element marked data-i18n, and placeholders marked data-i18n-placeholder.
  function translatePage() {
    if (lang === "en") return;
    document.title = t(document.title);
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.textContent.trim());
    for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.placeholder);
    for (const option of document.querySelectorAll("select option")) option.textContent = t(option.textContent);
  }

  function choose(next) {
    remember(next);
    const url = new URL(location.href);
    url.searchParams.set("lang", next);
    location.href = url.toString();
  }

  return { lang, t, translatePage, choose };
})();
