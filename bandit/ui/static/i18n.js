// nextbest UI: the pages' words in Russian (sign-in, agent desktop, dashboard). English is the source: t("Accept")
// is "Accept" on an English page and "Принять" on a Russian one; {name} fills a value in.
// The language: ?lang=ru|en, else the one chosen last on this browser (the switch), else the deployment's
// ui_language (the server puts it on <html data-ui-language>): a language, or "browser": the first of ours
// in navigator.languages; else English.
"use strict";

const NB_WORDS = {
  ru: {
    // static page
    "Agent desktop · nextbest": "Рабочее место оператора · nextbest",
    "Incoming call": "Входящий звонок", "New call": "Новый звонок", "Subscriber number": "Номер абонента",
    "Call reason": "Причина звонка", "— choose the reason —": "— выберите причину —",
    "What the caller says": "Что говорит абонент", "(optional)": "(необязательно)",
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
    // desktop: loading and the heading a screen reader starts from
    "Terms:": "Условия:",
    "Expected: {share} of callers like this accept": "Ожидаем: согласятся {share} таких абонентов",
    "Expected: {share} of callers like this accept, {worth} of value per pitch on average":
      "Ожидаем: согласятся {share} таких абонентов — в среднем {worth} ценности на предложение",
    "learned from {n} answers": "учтено ответов: {n}",
    "Why not?": "Почему нет?", "Why not? (optional, with Decline)": "Почему нет? (необязательно, вместе с отказом)", "the catalog's estimate: nothing learned yet":
      "оценка каталога: модель ещё не обучалась", "event {id}": "событие {id}",     "Looking up the caller…": "Ищем абонента…", "Deciding…": "Подбираем предложение…",
    // sign-in
    "Sign in · nextbest": "Вход · nextbest", "Sign in": "Войти", "API key": "Ключ API",
    "Paste your API key. A channel key opens the agent desktop, an admin key the marketing dashboard. The key is exchanged for a session cookie; the page does not keep it.":
      "Вставьте ключ API. Ключ с правом channel открывает рабочее место оператора, с правом admin — панель маркетолога. Ключ обменивается на cookie сеанса; страница его не хранит.",
    "No API keys are configured, so the pages are open:": "Ключи API не заданы, поэтому страницы открыты:",
    "This page needs a key with the \u201c{scope}\u201d scope. Sign in with another key.":
      "Этой странице нужен ключ с правом «{scope}». Войдите с другим ключом.",
    "This key is not valid. Check it and try again.": "Этот ключ не подходит. Проверьте его и попробуйте снова.",
    // top bar, numbers
    "Pages": "Страницы", "never": "никогда", "{n} s": "{n} с", "{n} min": "{n} мин", "{n} h": "{n} ч",
    // dashboard
    "Dashboard · nextbest": "Панель маркетолога · nextbest", "Marketing dashboard": "Панель маркетолога",
    "loading…": "загрузка…", "Window": "Период", "15 min": "15 мин", "1 hour": "1 час", "24 hours": "24 часа",
    "7 days": "7 дней", "Settled decisions": "Завершённые решения", "Acceptance rate": "Доля принятых",
    "Value per decision": "Ценность на решение", "Lift over control (value/decision)": "Прирост к контролю (ценность/решение)",
    "By offer": "По предложениям", "Model vs control group": "Модель и контрольная группа", "By channel": "По каналам",
    "Caps against the plan": "Лимиты и план", "Model and learner": "Модель и обучение", "Offers": "Предложения",
    "Difference of means with a 95% Welch (normal) interval over the settled decisions of the window; an interval that excludes 0 is a significant lift.":
      "Разность средних с 95% интервалом Уэлча (нормальным) по завершённым решениям периода; интервал, не содержащий 0, — значимый прирост.",
    "Changes go live on the next decision in every process. Empty cap fields mean no cap; an empty rule means everyone is eligible.":
      "Изменения действуют со следующего решения во всех процессах. Пустой лимит — без лимита; пустое условие — доступно всем.",
    "{accepted} accepted · {dropped} dropped": "принято: {accepted} · не показано: {dropped}", "pp": "п. п.",
    "lift {lift}": "прирост {lift}", "total value {value}": "всего ценность {value}",
    "model {model} · control {control} decisions": "решений: модель {model} · контроль {control}",
    "95% CI [{lower}, {upper}]": "95% ДИ [{lower}; {upper}]", "95% CI": "95% ДИ",
    "Acceptance rate per period": "Доля принятых по времени", "Value per decision per period": "Ценность на решение по времени",
    "Decisions by offer": "Решения по предложениям", "Lift over control with its 95% interval": "Прирост к контролю с 95% интервалом",
    "no settled decisions in this window yet": "за этот период завершённых решений ещё нет",
    "needs settled decisions in both groups": "нужны завершённые решения в обеих группах", "nothing to show yet": "пока нечего показать",
    "offer": "предложение", "channel": "канал", "decisions": "решения", "accepts": "принято", "acceptance": "доля принятых",
    "value/decision": "ценность/решение", "acceptance (pp)": "доля принятых (п. п.)", "metric": "показатель",
    "control": "контроль", "difference": "разность", "relative": "относительно", "acceptance rate": "доля принятых",
    "value per decision": "ценность на решение", "{n} entries · {age} behind": "записей: {n} · отставание {age}",
    "#{n} · {age} old": "№{n} · {age} назад", "this process (lease holder)": "этот процесс (держатель аренды)",
    "another process": "другой процесс", "Model version": "Версия модели", "Examples learned": "Обучено примеров",
    "Checkpoint": "Контрольная точка", "Learner": "Обучение", "Learner lag": "Отставание обучения",
    "Decision log lag": "Отставание журнала решений", "Analytics lag": "Отставание аналитики", "Decisions": "Решения",
    "Pending rewards": "Ждут ответа", "Joined / defaulted / dropped": "С ответом / без ответа / не показано",
    "Rewards late / duplicate": "Ответы поздние / повторные", "cap": "лимит", "used": "использовано", "limit": "лимит",
    "share of the cap": "доля лимита", "(+{n} pending)": "(+{n} ждут ответа)", "No offer has a cap.": "Ни у одного предложения нет лимита.",
    "accepts per day": "принятий в день", "accepts in total": "принятий всего", "impressions per day": "показов в день",
    "impressions in total": "показов всего", "accepts/day": "принятий/день", "accepts total": "принятий всего",
    "impr./day": "показов/день", "impr. total": "показов всего", "{name}: {cap}": "{name}: {cap}",
    "on/off": "вкл./выкл.", "{name}: on/off": "{name}: вкл./выкл.", "{name}: value": "{name}: ценность",
    "{name}: cap: {cap}": "{name}: лимит: {cap}", "{name}: eligibility rule": "{name}: условие доступности",
    "everyone": "все", "Save": "Сохранить", "Save {name}": "Сохранить «{name}»", "saving…": "сохранение…",
    "saved · catalog v{version}": "сохранено · каталог v{version}", "on": "вкл.", "value": "ценность",
    "cap: {cap}": "лимит: {cap}", "eligibility rule": "условие доступности", "save": "сохранить",
    "The value is a number, 0 or more.": "Ценность — число, 0 или больше.",
    "A cap is a whole number, 0 or more; leave it empty for no cap.":
      "Лимит — целое число, 0 или больше; оставьте поле пустым, чтобы лимита не было.",
    "This rule cannot be read:": "Это условие не читается:",
    "none yet": "пока нет",
    "Contact center": "Контакт-центр", "Web self-care": "Личный кабинет", "Search": "Поиск", "USSD": "USSD",
    "updated {time} · refreshes every {n} s": "обновлено в {time} · обновление каждые {n} с",
  },
};

const NB_I18N = (() => {
  const asked = new URLSearchParams(location.search).get("lang");
  let stored = null;
  try { stored = localStorage.getItem("nextbest.lang"); } catch (err) { stored = null; }
  const ours = (code) => code === "en" || (typeof code === "string" && Object.hasOwn(NB_WORDS, code));
  const lang = [asked, stored, configured()].find(ours) || "en";
  document.documentElement.lang = lang;
  if (asked === lang) remember(lang);

  function configured() {
    const setting = document.documentElement.dataset.uiLanguage;
    if (setting !== "browser") return setting;
    const wanted = (navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language]);
    return wanted.map((tag) => String(tag || "").toLowerCase().split("-")[0]).find(ours);
  }

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
    for (const node of document.querySelectorAll("[data-i18n-label]")) node.setAttribute("aria-label", t(node.getAttribute("aria-label")));
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
