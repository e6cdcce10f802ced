// The marketer's page: campaigns (the review service's experiments) with their variants, their results as charts
// (each arm's rate with its 95% interval, the rate over time, lift over the holdout, probability of being best),
// and the segments of a segmentation with their sizes and the customers' movements between versions. Plain
// script, no build step, nothing from another origin: it calls this gateway's routes of ReviewService
// (GET /v1/experiments, GET /v1/experiments/{id}/results) and SegmentationService (GET /v1/segmentations,
// GET /v1/segmentations/{name}, POST /v1/segmentations/{name}:compare), with the signed-in user's token.
//
// The address fragment names what is open (#experiment=ID&segmentation=NAME&version=N), so a view can be linked
// and the browser's back button works; English and French labels come from the one table below.
"use strict";

(() => {
  const { API_BASE, ApiError, CODE, TOKEN_KEY, decodeClaims, element, setMessage, show, tokenFromFragment } =
    window.MatchaUI;
  // Results are aggregates and segment profiles carry no personal data: the reads declare INTERNAL.
  const PURPOSE = "campaign";
  const DATA_CLASS = "INTERNAL";
  const LANGUAGE_KEY = "matcha.ui.language";
  // analyst, and the working roles that imply it (the mesh's role table).
  const READER_ROLES = ["analyst", "author", "operator", "reviewer", "publisher", "admin"];
  const CAMPAIGNS_PAGE_SIZE = "50";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const WATCH_RETRY_MIN_MS = 500;
  const WATCH_RETRY_MAX_MS = 15000;
  const ARM_COLOURS = 8; // campaigns.css colours arms arm-0 to arm-7, then again from arm-0

  // ---------- every string of the page, in both languages ----------

  const STRINGS = {
    en: {
      pageTitle: "Matcha campaigns",
      skipToCampaigns: "Skip to the campaigns",
      pagesNav: "Pages",
      reviewQueue: "Review queue",
      dataMap: "Data map",
      language: "Language",
      signOut: "Sign out",
      signIn: "Sign in",
      signInHelp: "Paste your Matcha token (role analyst). It stays in this browser tab only, and is sent to this " +
        "gateway alone.",
      token: "Token",
      signInButton: "Sign in",
      signedOut: "Signed out.",
      notAToken: "This is not a Matcha token (expected three dot-separated parts).",
      tokenExpired: "This token has expired. Ask for a new one.",
      tokenExpiredSignIn: "Your token has expired. Sign in again with a new one.",
      signedInAs: ({ subject, roles, tenant }) => `Signed in as ${subject} (${roles || "no roles"}) in ${tenant}`,
      withoutAnalyst: ": without the analyst role, results and segments will be refused",
      campaigns: "Campaigns",
      campaignsHelp: "Experiments over published variants, newest first. Open one to see its results.",
      colCampaign: "Campaign",
      colVariants: "Variants",
      colAudience: "Audience",
      colCreated: "Created",
      colWinner: "Winner",
      noCampaigns: "No campaign yet.",
      moreCampaigns: "Load more campaigns",
      experimentId: "Experiment id",
      open: "Open",
      enterExperimentId: "Enter the id of an experiment.",
      outcome: "Outcome",
      outcomeDelivered: "Delivered",
      outcomeOpened: "Opened",
      outcomeClicked: "Clicked",
      outcomeConverted: "Converted",
      outcomeUnsubscribed: "Unsubscribed",
      bucket: "Over time, per",
      perHour: "hour",
      perDay: "day",
      perWeek: "week",
      refresh: "Refresh",
      loading: "Loading…",
      resultsOf: ({ name }) => `Results of ${name}`,
      resultsSummary: ({ id, audience, holdout, minimum, reached }) =>
        `Experiment ${id}: ${audience} customers, ${holdout} held out; minimum sample ${minimum} per arm, ` +
        (reached ? "reached." : "not reached yet: the results are still uncertain."),
      winnerIs: ({ winner }) => ` Winner: ${winner}.`,
      armsHeading: "Variants",
      colArm: "Variant",
      colCustomers: "Customers",
      colRate: "Rate",
      colInterval: "95% interval",
      colLift: "Lift over holdout",
      colLiftAbsolute: "Difference",
      colBest: "Probability of being best",
      holdout: "Holdout",
      winner: "winner",
      interval: ({ low, high }) => `${low} to ${high}`,
      points: ({ value }) => `${value} pts`,
      noLift: "n/a",
      ratesCaption: ({ outcome }) => `${outcome} rate per variant, with its 95% interval`,
      ratesLabel: ({ outcome }) => `Bar chart: ${outcome} rate of each variant, whiskers from the low to the high ` +
        "end of its 95% interval",
      armBar: ({ arm, rate, low, high }) => `${arm}: ${rate} (95% interval ${low} to ${high})`,
      seriesCaption: ({ outcome, bucket }) => `${outcome} rate over time (cumulative, per ${bucket})`,
      seriesLabel: ({ outcome }) => `Line chart: ${outcome} rate of each variant over time`,
      seriesPoint: ({ arm, end, rate, customers }) => `${arm}, up to ${end}: ${rate} (${customers} customers)`,
      noSeries: "No time series for this experiment yet.",
      seriesRefused: ({ description }) => `No series at this width (${description}): choose a wider one.`,
      experimentNotFound: ({ id }) => `No experiment ${id} in this tenant.`,
      segments: "Segments",
      segmentsHelp: "Customers per segment of a segmentation, and how they moved since the previous version or " +
        "since the segmentation was built.",
      segmentation: "Segmentation",
      version: "Version",
      versionOption: ({ version, state, date }) => `${version}${state ? ` (${state})` : ""}, ${date}`,
      compareWith: "Movements since",
      sincePrevious: "the previous version",
      sinceBuild: "the build (customers' current features)",
      show: "Show",
      noSegmentations: "No segmentation yet: build one (matcha segment build) to see its segments here.",
      segmentationHeading: ({ name, version }) => `${name}, version ${version}`,
      segmentationSummary: ({ method, population, segments, features }) =>
        `${method}: ${population} customers in ${segments} segments, on ${features}.`,
      methodKmeans: "k-means",
      methodHdbscan: "HDBSCAN",
      methodRules: "Rules",
      stateBuilding: "building",
      stateFailed: "failed",
      notReady: ({ state }) => `This version is ${state}: it has no segments to show.`,
      colSegment: "Segment",
      colSize: "Customers",
      colShare: "Share",
      colDistinctive: "Distinctive features",
      sizesCaption: "Customers per segment",
      sizesLabel: "Bar chart: customers in each segment",
      sizeBar: ({ segment, size, share }) => `${segment}: ${size} customers (${share})`,
      outliers: "outliers",
      movements: "Movements",
      colon: ": ",
      firstVersion: "This is the first version: there is no previous version to compare it with.",
      movementsSincePrevious: ({ from, to }) => `From version ${from} to version ${to}`,
      movementsSinceBuild: ({ version }) => `From the build of version ${version} to the customers' features today`,
      movementsSummary: ({ common, moved, appeared, departed, drift }) =>
        `${common} customers on both sides, of whom ${moved} changed segment; ${appeared} new, ${departed} gone. ` +
        `Feature drift: ${drift}.`,
      driftStable: "stable",
      driftModerate: "moderate",
      driftSignificant: "significant",
      shiftsCaption: "Share of each segment, before and after",
      colBefore: "Before",
      colAfter: "After",
      colChange: "Change",
      appearedSegment: "new segment",
      vanishedSegment: "gone",
      migrationCaption: "Customers from each segment (rows) to each segment (columns)",
      migrationCorner: "from \u2193 to \u2192",
      liveHeading: "Moving now",
      liveOn: ({ name }) => `Live: customers of ${name} re-assigned since this page opened, as their data arrives ` +
        "(latest version).",
      liveOff: "Live updates interrupted: reconnecting…",
      liveNone: "No customer has moved since this page opened.",
      liveMove: ({ from, to, count, time }) =>
        `${from} \u2192 ${to}: ${count} ${count === "1" ? "customer" : "customers"} (latest at ${time})`,
      firstAssignment: "(new)",
      // Errors, then what the page was doing when it got one.
      refused: ({ role, action, message }) =>
        `Refused: you do not have the ${role} role needed to ${action}. ${message}`,
      notConfigured: ({ action }) => `This gateway has no service configured to ${action}.`,
      networkError: ({ action }) => `Network error: the gateway could not be reached to ${action}. Check the ` +
        "connection and try again.",
      tokenRefused: ({ message }) => `Your token was refused (${message}). Sign in again.`,
      invalid: ({ details }) => `Refused: ${details}.`,
      unavailable: ({ action }) => `The service is unavailable right now, so the page could not ${action}. Try ` +
        "again shortly.",
      failed: ({ action, message, status }) => `Could not ${action}: ${message} (HTTP ${status}).`,
      actionCampaigns: "list the campaigns",
      actionResults: "read the results",
      actionSegmentations: "list the segmentations",
      actionSegmentation: "read the segmentation",
      actionCompare: "compare the segmentation",
      actionWatch: "follow the customers' moves",
      actionSignIn: "sign in",
    },
    fr: {
      pageTitle: "Campagnes Matcha",
      skipToCampaigns: "Aller aux campagnes",
      pagesNav: "Pages",
      reviewQueue: "File de relecture",
      dataMap: "Carte des données",
      language: "Langue",
      signOut: "Se déconnecter",
      signIn: "Connexion",
      signInHelp: "Collez votre jeton Matcha (rôle analyst). Il reste dans cet onglet seulement et n'est envoyé " +
        "qu'à cette passerelle.",
      token: "Jeton",
      signInButton: "Se connecter",
      signedOut: "Déconnecté.",
      notAToken: "Ce n'est pas un jeton Matcha (trois parties séparées par des points attendues).",
      tokenExpired: "Ce jeton a expiré. Demandez-en un nouveau.",
      tokenExpiredSignIn: "Votre jeton a expiré. Reconnectez-vous avec un nouveau jeton.",
      signedInAs: ({ subject, roles, tenant }) =>
        `Connecté en tant que ${subject} (${roles || "aucun rôle"}) dans ${tenant}`,
      withoutAnalyst: " : sans le rôle analyst, les résultats et les segments seront refusés",
      campaigns: "Campagnes",
      campaignsHelp: "Expériences sur des variantes publiées, les plus récentes d'abord. Ouvrez-en une pour voir " +
        "ses résultats.",
      colCampaign: "Campagne",
      colVariants: "Variantes",
      colAudience: "Audience",
      colCreated: "Créée le",
      colWinner: "Gagnante",
      noCampaigns: "Aucune campagne pour l'instant.",
      moreCampaigns: "Afficher plus de campagnes",
      experimentId: "Identifiant de l'expérience",
      open: "Ouvrir",
      enterExperimentId: "Saisissez l'identifiant d'une expérience.",
      outcome: "Résultat mesuré",
      outcomeDelivered: "Délivré",
      outcomeOpened: "Ouvert",
      outcomeClicked: "Cliqué",
      outcomeConverted: "Converti",
      outcomeUnsubscribed: "Désabonné",
      bucket: "Dans le temps, par",
      perHour: "heure",
      perDay: "jour",
      perWeek: "semaine",
      refresh: "Actualiser",
      loading: "Chargement…",
      resultsOf: ({ name }) => `Résultats de ${name}`,
      resultsSummary: ({ id, audience, holdout, minimum, reached }) =>
        `Expérience ${id} : ${audience} clients, dont ${holdout} en groupe témoin ; échantillon minimal ` +
        `${minimum} par bras, ` + (reached ? "atteint." : "pas encore atteint : les résultats restent incertains."),
      winnerIs: ({ winner }) => ` Gagnante : ${winner}.`,
      armsHeading: "Variantes",
      colArm: "Variante",
      colCustomers: "Clients",
      colRate: "Taux",
      colInterval: "Intervalle à 95 %",
      colLift: "Gain sur le témoin",
      colLiftAbsolute: "Écart",
      colBest: "Probabilité d'être la meilleure",
      holdout: "Témoin",
      winner: "gagnante",
      interval: ({ low, high }) => `de ${low} à ${high}`,
      points: ({ value }) => `${value} pts`,
      noLift: "s.o.",
      ratesCaption: ({ outcome }) => `Taux « ${outcome} » par variante, avec son intervalle à 95 %`,
      ratesLabel: ({ outcome }) => `Diagramme en barres : taux « ${outcome} » de chaque variante, moustaches de ` +
        "la borne basse à la borne haute de son intervalle à 95 %",
      armBar: ({ arm, rate, low, high }) => `${arm} : ${rate} (intervalle à 95 % de ${low} à ${high})`,
      seriesCaption: ({ outcome, bucket }) => `Taux « ${outcome} » dans le temps (cumulé, par ${bucket})`,
      seriesLabel: ({ outcome }) => `Courbes : taux « ${outcome} » de chaque variante dans le temps`,
      seriesPoint: ({ arm, end, rate, customers }) => `${arm}, jusqu'au ${end} : ${rate} (${customers} clients)`,
      noSeries: "Pas encore de série temporelle pour cette expérience.",
      seriesRefused: ({ description }) => `Pas de série à ce pas (${description}) : choisissez-en un plus large.`,
      experimentNotFound: ({ id }) => `Aucune expérience ${id} dans cet espace.`,
      segments: "Segments",
      segmentsHelp: "Clients par segment d'une segmentation, et leurs déplacements depuis la version précédente " +
        "ou depuis la construction de la segmentation.",
      segmentation: "Segmentation",
      version: "Version",
      versionOption: ({ version, state, date }) => `${version}${state ? ` (${state})` : ""}, ${date}`,
      compareWith: "Déplacements depuis",
      sincePrevious: "la version précédente",
      sinceBuild: "la construction (caractéristiques actuelles des clients)",
      show: "Afficher",
      noSegmentations: "Aucune segmentation pour l'instant : construisez-en une (matcha segment build) pour voir " +
        "ses segments ici.",
      segmentationHeading: ({ name, version }) => `${name}, version ${version}`,
      segmentationSummary: ({ method, population, segments, features }) =>
        `${method} : ${population} clients dans ${segments} segments, selon ${features}.`,
      methodKmeans: "k-moyennes",
      methodHdbscan: "HDBSCAN",
      methodRules: "Règles",
      stateBuilding: "en construction",
      stateFailed: "en échec",
      notReady: ({ state }) => `Cette version est ${state} : elle n'a pas de segments à afficher.`,
      colSegment: "Segment",
      colSize: "Clients",
      colShare: "Part",
      colDistinctive: "Caractéristiques distinctives",
      sizesCaption: "Clients par segment",
      sizesLabel: "Diagramme en barres : clients de chaque segment",
      sizeBar: ({ segment, size, share }) => `${segment} : ${size} clients (${share})`,
      outliers: "atypiques",
      movements: "Déplacements",
      colon: " : ",
      firstVersion: "C'est la première version : il n'y a pas de version précédente à laquelle la comparer.",
      movementsSincePrevious: ({ from, to }) => `De la version ${from} à la version ${to}`,
      movementsSinceBuild: ({ version }) =>
        `De la construction de la version ${version} aux caractéristiques actuelles des clients`,
      movementsSummary: ({ common, moved, appeared, departed, drift }) =>
        `${common} clients des deux côtés, dont ${moved} ont changé de segment ; ${appeared} nouveaux, ` +
        `${departed} partis. Dérive des caractéristiques : ${drift}.`,
      driftStable: "stable",
      driftModerate: "modérée",
      driftSignificant: "importante",
      shiftsCaption: "Part de chaque segment, avant et après",
      colBefore: "Avant",
      colAfter: "Après",
      colChange: "Évolution",
      appearedSegment: "nouveau segment",
      vanishedSegment: "disparu",
      migrationCaption: "Clients de chaque segment (lignes) vers chaque segment (colonnes)",
      migrationCorner: "de \u2193 vers \u2192",
      liveHeading: "En ce moment",
      liveOn: ({ name }) => `En direct : clients de ${name} réaffectés depuis l'ouverture de cette page, au fil de ` +
        "leurs données (dernière version).",
      liveOff: "Mises à jour en direct interrompues : reconnexion…",
      liveNone: "Aucun client n'a changé de segment depuis l'ouverture de cette page.",
      liveMove: ({ from, to, count, time }) => `${from} \u2192 ${to} : ${count} client${count === "1" ? "" : "s"}` +
        ` (dernier à ${time})`,
      firstAssignment: "(nouveau)",
      refused: ({ role, action, message }) =>
        `Refusé : il vous manque le rôle ${role} nécessaire pour ${action}. ${message}`,
      notConfigured: ({ action }) => `Cette passerelle n'a pas de service configuré pour ${action}.`,
      networkError: ({ action }) => `Erreur réseau : la passerelle est injoignable pour ${action}. Vérifiez la ` +
        "connexion et réessayez.",
      tokenRefused: ({ message }) => `Votre jeton a été refusé (${message}). Reconnectez-vous.`,
      invalid: ({ details }) => `Refusé : ${details}.`,
      unavailable: ({ action }) => `Le service est indisponible pour le moment : impossible de ${action}. ` +
        "Réessayez dans un instant.",
      failed: ({ action, message, status }) => `Impossible de ${action} : ${message} (HTTP ${status}).`,
      actionCampaigns: "lister les campagnes",
      actionResults: "lire les résultats",
      actionSegmentations: "lister les segmentations",
      actionSegmentation: "lire la segmentation",
      actionCompare: "comparer la segmentation",
      actionWatch: "suivre les déplacements des clients",
      actionSignIn: "se connecter",
    },
  };
  const LANGUAGES = Object.keys(STRINGS);

  const $ = (id) => document.getElementById(id);
  const state = {
    language: "en",
    token: null,
    claims: null,
    experiments: [], // ListExperiments pages read so far
    experimentsToken: "",
    campaignsError: null,
    experimentId: "",
    results: null, // the GetCampaignResults reply shown
    seriesRefusal: "", // why the reply shown has no series, when the service refused the bucket
    resultsGeneration: 0,
    segmentations: [], // latest version of each
    segmentationName: "",
    versions: [], // every version of the chosen segmentation, newest first
    segmentation: null, // the GetSegmentation reply's segmentation shown
    comparison: null, // { reply, mode, baseline, target } or { note }
    segmentsGeneration: 0,
    // Live moves of the chosen segmentation, "from>to" -> { from, to, toName, count, time }, since the page opened
    live: new Map(),
    liveName: "",
    liveSequence: null, // the last change seen: a reconnection replays what came after it
    liveState: "", // "on", "off", or why the watch was refused
    watchAbort: null,
    watchRetryMs: WATCH_RETRY_MIN_MS,
  };

  function t(key, params) {
    const value = STRINGS[state.language][key] ?? STRINGS.en[key];
    return typeof value === "function" ? value(params || {}) : value;
  }

  // ---------- formatting ----------

  function integer(value) {
    return new Intl.NumberFormat(state.language).format(Number(value || 0));
  }

  function percent(value, { signed = false, digits = 1 } = {}) {
    return new Intl.NumberFormat(state.language, {
      style: "percent",
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
      signDisplay: signed ? "exceptZero" : "auto",
    }).format(Number(value || 0));
  }

  function points(value) {
    const number = new Intl.NumberFormat(state.language, {
      minimumFractionDigits: 1,
      maximumFractionDigits: 1,
      signDisplay: "exceptZero",
    }).format(Number(value || 0) * 100);
    return t("points", { value: number });
  }

  function parseTime(value) {
    if (!value) return null;
    // Protobuf JSON may carry nanoseconds; Date takes milliseconds.
    const time = Date.parse(value.replace(/(\.\d{3})\d+/, "$1"));
    return Number.isNaN(time) ? null : new Date(time);
  }

  function dateTime(value, withTime = true) {
    const time = parseTime(value);
    if (!time) return value || "";
    const options = withTime ? { dateStyle: "medium", timeStyle: "short" } : { dateStyle: "medium" };
    return new Intl.DateTimeFormat(state.language, options).format(time);
  }

  function armName(arm) {
    return arm.holdout || arm.arm === "holdout" ? t("holdout") : arm.arm;
  }

  function outcomeKey(outcome) {
    const word = (outcome || "OUTCOME_TYPE_CONVERTED").replace("OUTCOME_TYPE_", "").toLowerCase();
    return `outcome${word.charAt(0).toUpperCase()}${word.slice(1)}`;
  }

  function rateOf(arm, outcome) {
    const rate = (arm.outcomes || []).find((entry) => entry.type === outcome) || {};
    return {
      customers: Number(rate.customers || 0),
      rate: Number(rate.rate || 0),
      low: Number(rate.ciLow || 0),
      high: Number(rate.ciHigh || 0),
    };
  }

  function svg(tag, attributes, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  // The smallest of 1, 2, 2.5 or 5 times a power of ten at or above `value`: round axis ends.
  function roundUp(value) {
    if (!(value > 0)) return 1;
    const power = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 2, 2.5, 5, 10]) {
      if (step * power >= value - 1e-12) return step * power;
    }
    return 10 * power;
  }

  // ---------- language ----------

  function preferredLanguage() {
    const fragment = new URLSearchParams(location.hash.slice(1)).get("lang");
    if (LANGUAGES.includes(fragment)) return fragment;
    const stored = sessionStorage.getItem(LANGUAGE_KEY);
    if (LANGUAGES.includes(stored)) return stored;
    for (const wanted of navigator.languages || [navigator.language || ""]) {
      const base = wanted.slice(0, 2).toLowerCase();
      if (LANGUAGES.includes(base)) return base;
    }
    return "en";
  }

  function setLanguage(language) {
    state.language = language;
    sessionStorage.setItem(LANGUAGE_KEY, language);
    if (fragment().has("lang")) updateFragment({ lang: language }); // a shared link's choice, now changed
    document.documentElement.lang = language;
    document.title = t("pageTitle");
    $("language").value = language;
    for (const node of document.querySelectorAll("[data-text]")) node.textContent = t(node.dataset.text);
    for (const node of document.querySelectorAll("[data-label]")) {
      node.setAttribute("aria-label", t(node.dataset.label));
    }
    // What came from the services is drawn again in the new language.
    if (state.claims) showIdentity();
    renderCampaigns();
    if (state.results) renderResults();
    renderSegmentationChoices();
    if (state.segmentation) renderSegmentation();
    if (state.comparison) renderComparison();
    renderLive();
  }

  // ---------- the token ----------

  function showIdentity() {
    const claims = state.claims;
    const roles = Array.isArray(claims.roles) ? claims.roles : [];
    const identity = $("identity");
    identity.textContent = t("signedInAs", { subject: claims.sub, roles: roles.join(", "), tenant: claims.tenant });
    if (!roles.some((role) => READER_ROLES.includes(role))) identity.textContent += t("withoutAnalyst");
    show(identity, true);
  }

  function signIn(token) {
    const claims = decodeClaims(token);
    if (!claims) {
      showSignIn(t("notAToken"));
      return false;
    }
    if (claims.exp && claims.exp * 1000 <= Date.now()) {
      showSignIn(t("tokenExpired"));
      return false;
    }
    state.token = token;
    state.claims = claims;
    sessionStorage.setItem(TOKEN_KEY, token);
    showIdentity();
    show($("sign-out"), true);
    show($("sign-in"), false);
    show($("workspace"), true);
    loadCampaigns();
    loadSegmentations();
    route();
    return true;
  }

  function showSignIn(message) {
    state.token = null;
    state.claims = null;
    state.experiments = [];
    state.experimentsToken = "";
    state.campaignsError = null;
    closeResults();
    state.segmentations = [];
    state.segmentationName = "";
    state.versions = [];
    stopWatching();
    clearSegmentation();
    renderCampaigns();
    renderSegmentationChoices();
    sessionStorage.removeItem(TOKEN_KEY);
    show($("workspace"), false);
    show($("identity"), false);
    show($("sign-out"), false);
    show($("sign-in"), true);
    const note = $("sign-in-message");
    note.textContent = message || "";
    show(note, Boolean(message));
    $("token-input").value = "";
    $("token-input").focus();
  }

  // ---------- calls ----------

  function requestHeaders(accept) {
    return {
      authorization: `Bearer ${state.token}`,
      "x-matcha-purpose": PURPOSE,
      "x-matcha-data-class": DATA_CLASS,
      accept,
    };
  }

  async function errorOf(response) {
    let status = null;
    try {
      status = await response.json();
    } catch {
      status = null;
    }
    return new ApiError(response.status, status);
  }

  function call(method, path, { params, body } = {}) {
    return MatchaUI.requestJson(method, path, { params, body, headers: requestHeaders() });
  }

  // A refusal in words a marketer can act on; the service's own message is kept at the end.
  function explain(error, actionKey) {
    const action = t(actionKey);
    if (!(error instanceof ApiError)) return t("networkError", { action });
    switch (error.reason) {
      case "MISSING_ROLE":
        return t("refused", { role: error.metadata.role || "analyst", action, message: error.message });
      case "TOKEN_EXPIRED":
        return t("tokenExpiredSignIn");
      case "SERVICE_NOT_CONFIGURED":
        return t("notConfigured", { action });
      default:
        break;
    }
    if (error.code === CODE.UNAUTHENTICATED) return t("tokenRefused", { message: error.message });
    if (error.code === CODE.INVALID_ARGUMENT && error.violations.length) {
      return t("invalid", { details: error.violations.map((v) => `${v.field}: ${v.description}`).join("; ") });
    }
    if (error.code === CODE.UNAVAILABLE) return t("unavailable", { action });
    return t("failed", { action, message: error.message, status: error.httpStatus });
  }

  function handleAuthFailure(error) {
    if (error instanceof ApiError && error.code === CODE.UNAUTHENTICATED) {
      showSignIn(explain(error, "actionSignIn"));
      return true;
    }
    return false;
  }

  // ---------- the address fragment ----------

  function fragment() {
    return new URLSearchParams(location.hash.slice(1));
  }

  // Records the view in the address without a navigation (no hashchange, no history entry).
  function updateFragment(changes) {
    const params = fragment();
    for (const [name, value] of Object.entries(changes)) {
      if (value) params.set(name, value);
      else params.delete(name);
    }
    const text = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (text ? `#${text}` : ""));
  }

  function experimentHref(id) {
    return `#${new URLSearchParams({ experiment: id }).toString()}`;
  }

  function route() {
    if (!state.token) return;
    const params = fragment();
    const experiment = params.get("experiment") || "";
    if (experiment && experiment !== state.experimentId) {
      openExperiment(experiment);
    } else if (!experiment && state.experimentId) {
      closeResults();
    }
    const segmentation = params.get("segmentation") || "";
    const version = params.get("version") || "";
    if (segmentation && state.segmentations.length &&
        (segmentation !== state.segmentationName || version !== String(state.segmentation?.version || ""))) {
      chooseSegmentation(segmentation, version);
    } else if (!segmentation && state.segmentation) {
      // A campaign link names the experiment only: the segmentation shown stays in the address.
      updateFragment({ segmentation: state.segmentationName, version: String(state.segmentation.version) });
    }
  }

  // ---------- campaigns ----------

  async function loadCampaigns(more = false) {
    setMessage($("campaigns-message"), "");
    $("more-campaigns").disabled = true;
    const params = [["pageSize", CAMPAIGNS_PAGE_SIZE]];
    if (more && state.experimentsToken) params.push(["pageToken", state.experimentsToken]);
    try {
      const page = await call("GET", "v1/experiments", { params });
      if (!more) state.experiments = [];
      state.experiments.push(...(page.experiments || []));
      state.experimentsToken = page.nextPageToken || "";
      state.campaignsError = null;
    } catch (error) {
      if (handleAuthFailure(error)) return;
      state.campaignsError = error;
    } finally {
      $("more-campaigns").disabled = false;
    }
    renderCampaigns();
  }

  function renderCampaigns() {
    const body = $("campaigns-body");
    body.replaceChildren();
    for (const experiment of state.experiments) {
      const row = element("tr");
      const link = element("a", experiment.name || experiment.id, "campaign-link");
      link.href = experimentHref(experiment.id);
      link.dataset.experimentId = experiment.id;
      if (experiment.id === state.experimentId) {
        row.className = "current";
        link.setAttribute("aria-current", "true");
      }
      const nameCell = element("th");
      nameCell.scope = "row";
      nameCell.append(link);
      if (experiment.name && experiment.name !== experiment.id) {
        nameCell.append(element("span", experiment.id, "note id"));
      }
      row.append(
        nameCell,
        element("td", (experiment.variants || []).map((variant) => variant.label).join(", ")),
        element("td", integer(experiment.audienceSize), "number"),
        element("td", dateTime(experiment.createTime)),
        element("td", experiment.promotedVariant || ""),
      );
      body.append(row);
    }
    show($("campaigns-empty"), state.token !== null && !state.campaignsError && state.experiments.length === 0);
    show($("more-campaigns"), Boolean(state.experimentsToken));
    if (state.campaignsError) {
      setMessage($("campaigns-message"), explain(state.campaignsError, "actionCampaigns"), "error");
    } else {
      setMessage($("campaigns-message"), "");
    }
  }

  // ---------- results ----------

  function closeResults() {
    state.resultsGeneration += 1; // an answer still on its way is dropped
    state.experimentId = "";
    state.results = null;
    show($("results"), false);
    renderCampaigns();
  }

  async function openExperiment(id) {
    state.experimentId = id;
    state.results = null;
    renderCampaigns();
    $("results-heading").textContent = t("loading");
    $("results-summary").textContent = "";
    show($("results-body"), false);
    show($("results"), true);
    await loadResults({ focus: true });
  }

  async function loadResults({ focus = false } = {}) {
    const id = state.experimentId;
    if (!id) return;
    const generation = ++state.resultsGeneration;
    setMessage($("results-message"), "");
    $("refresh-results").disabled = true;
    const path = `v1/experiments/${encodeURIComponent(id)}/results`;
    const outcome = ["outcome", $("outcome").value];
    let reply;
    let seriesRefusal = "";
    try {
      try {
        const series = [["includeSeries", "true"], ["bucket", $("bucket").value]];
        reply = await call("GET", path, { params: [outcome, ...series] });
      } catch (error) {
        // Too many buckets since the experiment began (hours over months): the results without the series.
        const bucket = error instanceof ApiError && error.violations.find((violation) => violation.field === "bucket");
        if (!bucket) throw error;
        seriesRefusal = t("seriesRefused", { description: bucket.description });
        reply = await call("GET", path, { params: [outcome] });
      }
    } catch (error) {
      if (generation !== state.resultsGeneration || handleAuthFailure(error)) return;
      state.results = null;
      $("results-heading").textContent = id;
      show($("results-body"), false);
      const notFound = error instanceof ApiError && error.code === CODE.NOT_FOUND;
      setMessage($("results-message"), notFound ? t("experimentNotFound", { id }) : explain(error, "actionResults"),
        "error");
      $("results-message").focus();
      return;
    } finally {
      if (generation === state.resultsGeneration) $("refresh-results").disabled = false;
    }
    if (generation !== state.resultsGeneration) return;
    state.results = reply;
    state.seriesRefusal = seriesRefusal;
    renderResults();
    if (focus) $("results-heading").focus();
  }

  function renderResults() {
    const reply = state.results;
    const experiment = reply.experiment || {};
    const outcome = reply.outcome || $("outcome").value;
    const outcomeName = t(outcomeKey(outcome));
    $("results-heading").textContent = t("resultsOf", { name: experiment.name || experiment.id });
    let summary = t("resultsSummary", {
      id: experiment.id,
      audience: integer(experiment.audienceSize),
      holdout: percent(experiment.holdoutShare, { digits: 0 }),
      minimum: integer(experiment.minSamplePerArm),
      reached: Boolean(reply.minimumSampleReached),
    });
    if (reply.winner) summary += t("winnerIs", { winner: reply.winner });
    $("results-summary").textContent = summary;

    const body = $("arms-body");
    body.replaceChildren();
    (reply.arms || []).forEach((arm, index) => {
      const rate = rateOf(arm, outcome);
      const row = element("tr", null, arm.holdout ? "holdout-row" : "");
      row.dataset.arm = arm.arm;
      const name = element("th", armName(arm));
      name.scope = "row";
      name.prepend(swatch(arm, index));
      if (arm.promoted) name.append(" ", element("span", t("winner"), "badge"));
      const hasLift = arm.lift !== undefined && arm.lift !== null;
      const hasDifference = arm.liftAbsolute !== undefined && arm.liftAbsolute !== null;
      row.append(
        name,
        element("td", integer(arm.audience), "number"),
        element("td", integer(rate.customers), "number"),
        element("td", percent(rate.rate), "number rate"),
        element("td", t("interval", { low: percent(rate.low), high: percent(rate.high) }), "interval"),
        element("td", arm.holdout ? "" : hasLift ? percent(arm.lift, { signed: true }) : t("noLift"), "number"),
        element("td", arm.holdout ? "" : hasDifference ? points(arm.liftAbsolute) : t("noLift"), "number"),
        element("td", percent(arm.probabilityBest), "number"),
      );
      body.append(row);
    });

    $("rates-caption").textContent = t("ratesCaption", { outcome: outcomeName });
    $("rates-chart").replaceChildren(ratesChart(reply.arms || [], outcome, outcomeName));
    const bucketName = $("bucket").selectedOptions[0].textContent;
    $("series-caption").textContent = t("seriesCaption", { outcome: outcomeName, bucket: bucketName });
    renderSeries(reply, outcomeName);
    show($("results-body"), true);
  }

  function armClass(arm, index) {
    return arm.holdout || arm.arm === "holdout" ? "holdout" : `arm-${index % ARM_COLOURS}`;
  }

  function swatch(arm, index) {
    const mark = svg("svg", { class: "swatch", viewBox: "0 0 10 10", width: 10, height: 10, "aria-hidden": "true" });
    mark.append(svg("rect", { class: `mark ${armClass(arm, index)}`, width: 10, height: 10 }));
    return mark;
  }

  // One bar per arm up to its rate, a whisker from the low to the high end of its interval.
  function ratesChart(arms, outcome, outcomeName) {
    const width = 560;
    const height = 260;
    const margin = { left: 56, right: 12, top: 16, bottom: 36 };
    const plotHeight = height - margin.top - margin.bottom;
    const rates = arms.map((arm) => rateOf(arm, outcome));
    const top = roundUp(Math.max(0.01, ...rates.map((rate) => rate.high)));
    const y = (value) => margin.top + plotHeight * (1 - Math.min(value, top) / top);
    const chart = svg("svg", {
      class: "rates",
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": t("ratesLabel", { outcome: outcomeName }),
    });
    chart.append(axis(y, top, margin.left, width - margin.right));
    const band = (width - margin.left - margin.right) / Math.max(arms.length, 1);
    const barWidth = Math.min(64, band * 0.5);
    arms.forEach((arm, index) => {
      const rate = rates[index];
      const centre = margin.left + band * index + band / 2;
      const group = svg("g", { class: `arm ${armClass(arm, index)}`, "data-arm": arm.arm });
      group.dataset.rate = rate.rate;
      group.dataset.low = rate.low;
      group.dataset.high = rate.high;
      group.append(svg("title", {}, t("armBar", {
        arm: armName(arm), rate: percent(rate.rate), low: percent(rate.low), high: percent(rate.high),
      })));
      group.append(svg("rect", {
        class: `bar mark ${armClass(arm, index)}${arm.promoted ? " promoted" : ""}`,
        x: centre - barWidth / 2,
        y: y(rate.rate),
        width: barWidth,
        height: Math.max(0, y(0) - y(rate.rate)),
      }));
      const whisker = svg("g", { class: "whisker" });
      whisker.append(
        svg("line", { class: "range", x1: centre, x2: centre, y1: y(rate.low), y2: y(rate.high) }),
        svg("line", { class: "cap low", x1: centre - 8, x2: centre + 8, y1: y(rate.low), y2: y(rate.low) }),
        svg("line", { class: "cap high", x1: centre - 8, x2: centre + 8, y1: y(rate.high), y2: y(rate.high) }),
      );
      group.append(whisker);
      group.append(svg("text", { class: "value", x: centre + barWidth / 2 + 4, y: y(rate.rate) + 4 },
        percent(rate.rate)));
      group.append(svg("text", { class: "label", x: centre, y: height - margin.bottom + 18, "text-anchor": "middle" },
        armName(arm)));
      chart.append(group);
    });
    return chart;
  }

  // Horizontal grid lines with their percentages, from 0 to `top` (a roundUp value) in round steps.
  function axis(y, top, left, right) {
    const group = svg("g", { class: "axis", "aria-hidden": "true" });
    const mantissa = Math.round(top / 10 ** Math.floor(Math.log10(top) + 1e-9) * 10) / 10;
    const steps = mantissa === 2 ? 4 : 5;
    const stepPercent = (top / steps) * 100;
    const digits = Math.abs(stepPercent - Math.round(stepPercent)) < 1e-9 ? 0 : 1;
    for (let step = 0; step <= steps; step += 1) {
      const value = (top * step) / steps;
      group.append(
        svg("line", { class: step ? "grid" : "base", x1: left, x2: right, y1: y(value), y2: y(value) }),
        svg("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end" }, percent(value, { digits })),
      );
    }
    return group;
  }

  function renderSeries(reply, outcomeName) {
    const holder = $("series-chart");
    const legend = $("series-legend");
    holder.replaceChildren();
    legend.replaceChildren();
    const series = (reply.series || []).filter((entry) => (entry.points || []).length);
    if (!series.length) {
      holder.append(element("p", state.seriesRefusal || t("noSeries"), "empty"));
      return;
    }
    const armIndex = new Map((reply.arms || []).map((arm, index) => [arm.arm, index]));
    const armOf = (name) => (reply.arms || [])[armIndex.get(name)] || { arm: name, holdout: name === "holdout" };
    const width = 560;
    const height = 260;
    const margin = { left: 56, right: 12, top: 16, bottom: 36 };
    const buckets = Math.max(...series.map((entry) => entry.points.length));
    const top = roundUp(Math.max(0.01, ...series.flatMap((entry) => entry.points.map((p) => Number(p.rate || 0)))));
    const plotHeight = height - margin.top - margin.bottom;
    const plotWidth = width - margin.left - margin.right;
    const x = (index) => margin.left + (buckets === 1 ? plotWidth / 2 : (plotWidth * index) / (buckets - 1));
    const y = (value) => margin.top + plotHeight * (1 - Math.min(value, top) / top);
    const chart = svg("svg", {
      class: "series",
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": t("seriesLabel", { outcome: outcomeName }),
    });
    chart.append(axis(y, top, margin.left, width - margin.right));
    const first = series[0].points;
    const timeLabels = svg("g", { class: "axis time", "aria-hidden": "true" });
    timeLabels.append(svg("text", { x: x(0), y: height - margin.bottom + 18, "text-anchor": "start" },
      dateTime(first[0].endTime, false)));
    if (buckets > 1) {
      timeLabels.append(svg("text", { x: x(buckets - 1), y: height - margin.bottom + 18, "text-anchor": "end" },
        dateTime(first[first.length - 1].endTime, false)));
    }
    chart.append(timeLabels);
    for (const entry of series) {
      const arm = armOf(entry.arm);
      const index = armIndex.get(entry.arm) ?? 0;
      const colour = armClass(arm, index);
      const group = svg("g", { class: `line ${colour}`, "data-arm": entry.arm });
      const coordinates = entry.points.map((point, at) => `${x(at)},${y(Number(point.rate || 0))}`);
      group.append(svg("polyline", { class: `trend ${colour}`, points: coordinates.join(" ") }));
      entry.points.forEach((point, at) => {
        const dot = svg("circle", { class: `mark ${colour}`, cx: x(at), cy: y(Number(point.rate || 0)), r: 3.5 });
        dot.dataset.rate = Number(point.rate || 0);
        dot.append(svg("title", {}, t("seriesPoint", {
          arm: armName(arm),
          end: dateTime(point.endTime),
          rate: percent(point.rate),
          customers: integer(point.customers),
        })));
        group.append(dot);
      });
      chart.append(group);
      const item = element("li");
      item.append(swatch(arm, index), ` ${armName(arm)}: `,
        element("span", percent(entry.points[entry.points.length - 1].rate), "latest"));
      legend.append(item);
    }
    holder.append(chart);
  }

  // ---------- segments ----------

  async function loadSegmentations() {
    setMessage($("segments-message"), "");
    const generation = ++state.segmentsGeneration;
    let reply;
    try {
      reply = await call("GET", "v1/segmentations", { params: [["pageSize", "200"]] });
    } catch (error) {
      if (generation !== state.segmentsGeneration || handleAuthFailure(error)) return;
      setMessage($("segments-message"), explain(error, "actionSegmentations"), "error");
      return;
    }
    if (generation !== state.segmentsGeneration) return;
    state.segmentations = reply.segmentations || [];
    renderSegmentationChoices();
    if (!state.segmentations.length) {
      setMessage($("segments-message"), t("noSegmentations"));
      return;
    }
    const params = fragment();
    const wanted = params.get("segmentation");
    const known = state.segmentations.some((entry) => entry.name === wanted);
    await chooseSegmentation(known ? wanted : state.segmentations[0].name, known ? params.get("version") || "" : "");
  }

  function renderSegmentationChoices() {
    const select = $("segmentation");
    select.replaceChildren(...state.segmentations.map((entry) => {
      const option = element("option", entry.name);
      option.value = entry.name;
      return option;
    }));
    select.value = state.segmentationName;
    const versions = $("version");
    versions.replaceChildren(...state.versions.map((entry) => {
      const stateName = entry.state === "SEGMENTATION_STATE_BUILDING" ? t("stateBuilding")
        : entry.state === "SEGMENTATION_STATE_FAILED" ? t("stateFailed") : "";
      const option = element("option", t("versionOption", {
        version: entry.version, state: stateName, date: dateTime(entry.completeTime || entry.createTime),
      }));
      option.value = String(entry.version);
      return option;
    }));
    if (state.segmentation) versions.value = String(state.segmentation.version);
    $("segmentation-form").querySelector("button").disabled = !state.segmentations.length;
  }

  // Reads the versions of `name`, then shows `version` (the latest when empty).
  async function chooseSegmentation(name, version) {
    const generation = ++state.segmentsGeneration;
    setMessage($("segments-message"), "");
    let reply;
    try {
      reply = await call("GET", "v1/segmentations", { params: [["name", name], ["pageSize", "200"]] });
    } catch (error) {
      if (generation !== state.segmentsGeneration || handleAuthFailure(error)) return;
      setMessage($("segments-message"), explain(error, "actionSegmentations"), "error");
      return;
    }
    if (generation !== state.segmentsGeneration) return;
    if (name !== state.liveName) startWatching(name);
    state.segmentationName = name;
    state.versions = reply.segmentations || [];
    const chosen = state.versions.find((entry) => String(entry.version) === String(version)) || state.versions[0];
    renderSegmentationChoices();
    if (chosen) {
      $("version").value = String(chosen.version);
      await showSegmentation();
    }
  }

  function clearSegmentation() {
    state.segmentation = null;
    state.comparison = null;
    $("segments-body").replaceChildren();
    $("sizes-chart").replaceChildren();
    show($("segmentation-body"), false);
  }

  async function showSegmentation({ focus = false } = {}) {
    const name = $("segmentation").value;
    const version = Number($("version").value || 0);
    if (!name) return;
    const generation = ++state.segmentsGeneration;
    setMessage($("segments-message"), "");
    let segmentation;
    try {
      const reply = await call("GET", `v1/segmentations/${encodeURIComponent(name)}`, {
        params: [["version", String(version)]],
      });
      segmentation = reply.segmentation;
    } catch (error) {
      if (generation !== state.segmentsGeneration || handleAuthFailure(error)) return;
      clearSegmentation();
      setMessage($("segments-message"), explain(error, "actionSegmentation"), "error");
      $("segments-message").focus();
      return;
    }
    if (generation !== state.segmentsGeneration) return;
    state.segmentation = segmentation;
    state.comparison = null;
    updateFragment({ segmentation: name, version: String(segmentation.version) });
    renderSegmentation();
    show($("segmentation-body"), true);
    if (focus) $("segmentation-heading").focus();
    await compare(generation);
  }

  function methodName(method) {
    return {
      SEGMENTATION_METHOD_KMEANS: t("methodKmeans"),
      SEGMENTATION_METHOD_HDBSCAN: t("methodHdbscan"),
      SEGMENTATION_METHOD_RULES: t("methodRules"),
    }[method] || "";
  }

  function segmentLabel(segment) {
    if (!segment) return "";
    return segment.outliers ? `${segment.name || segment.id} (${t("outliers")})` : segment.name || segment.id;
  }

  function renderSegmentation() {
    const segmentation = state.segmentation;
    const segments = segmentation.segments || [];
    $("segmentation-heading").textContent = t("segmentationHeading", {
      name: segmentation.name, version: segmentation.version,
    });
    const ready = segmentation.state === "SEGMENTATION_STATE_READY";
    $("segmentation-summary").textContent = ready
      ? t("segmentationSummary", {
        method: methodName(segmentation.method),
        population: integer(segmentation.population),
        segments: integer(segments.length),
        features: (segmentation.features || []).join(", "),
      })
      : t("notReady", {
        state: segmentation.state === "SEGMENTATION_STATE_FAILED" ? t("stateFailed") : t("stateBuilding"),
      });
    const body = $("segments-body");
    body.replaceChildren();
    for (const segment of segments) {
      const row = element("tr");
      row.dataset.segment = segment.id;
      const name = element("th", segmentLabel(segment));
      name.scope = "row";
      if (segment.name && segment.name !== segment.id) name.append(element("span", segment.id, "note id"));
      if (segment.persona && segment.persona.title) name.append(element("span", segment.persona.title, "note persona"));
      // A rule segment's condition; the catch-all of rules that matched no one says nothing worth showing.
      if (segment.condition && segment.condition !== "true") {
        name.append(element("code", segment.condition, "note condition"));
      }
      // An empty segment has no profile to speak of.
      const top = Number(segment.size || 0) ? (segment.topFeatures || []).slice(0, 3) : [];
      const distinctive = top.map((featureName) => {
        const feature = (segment.features || []).find((entry) => entry.feature === featureName);
        return feature && feature.baseMean ? `${featureName} \u00d7${formatLift(feature.lift)}` : featureName;
      });
      row.append(
        name,
        element("td", integer(segment.size), "number size"),
        element("td", percent(segment.share), "number"),
        element("td", distinctive.join(", ")),
      );
      body.append(row);
    }
    $("sizes-caption").textContent = t("sizesCaption");
    $("sizes-chart").replaceChildren(sizesChart(segments));
  }

  function formatLift(value) {
    return new Intl.NumberFormat(state.language, { maximumFractionDigits: 2 }).format(Number(value || 0));
  }

  function sizesChart(segments) {
    const rowHeight = 26;
    const width = 420;
    const labelWidth = 140;
    const valueWidth = 70;
    const height = Math.max(1, segments.length) * rowHeight + 8;
    const largest = Math.max(1, ...segments.map((segment) => Number(segment.size || 0)));
    const chart = svg("svg", {
      class: "sizes",
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": t("sizesLabel"),
    });
    segments.forEach((segment, index) => {
      const size = Number(segment.size || 0);
      const top = 4 + index * rowHeight;
      const barLength = ((width - labelWidth - valueWidth) * size) / largest;
      const group = svg("g", { class: "segment", "data-segment": segment.id });
      group.dataset.size = size;
      group.append(
        svg("title", {}, t("sizeBar", {
          segment: segmentLabel(segment), size: integer(size), share: percent(segment.share),
        })),
        svg("text", { class: "label", x: labelWidth - 6, y: top + rowHeight / 2 + 4, "text-anchor": "end" },
          segmentLabel(segment).slice(0, 22)),
        svg("rect", { class: "bar", x: labelWidth, y: top + 3, width: barLength, height: rowHeight - 8 }),
        svg("text", { class: "value", x: labelWidth + barLength + 4, y: top + rowHeight / 2 + 4 }, integer(size)),
      );
      chart.append(group);
    });
    return chart;
  }

  async function compare(generation) {
    const segmentation = state.segmentation;
    const mode = $("compare-with").value;
    setMessage($("movements-message"), "");
    show($("movements-body"), false);
    if (segmentation.state !== "SEGMENTATION_STATE_READY") return;
    let body;
    let baseline;
    if (mode === "previous") {
      const earlier = state.versions
        .filter((entry) => entry.version < segmentation.version && entry.state === "SEGMENTATION_STATE_READY")
        .map((entry) => entry.version);
      if (!earlier.length) {
        state.comparison = { note: "firstVersion" };
        renderComparison();
        return;
      }
      baseline = Math.max(...earlier);
      body = { baselineVersion: baseline, targetVersion: segmentation.version };
    } else {
      baseline = segmentation.version;
      body = { baselineVersion: baseline, currentData: {} };
    }
    let reply;
    try {
      reply = await call("POST", `v1/segmentations/${encodeURIComponent(segmentation.name)}:compare`, { body });
    } catch (error) {
      if (generation !== state.segmentsGeneration || handleAuthFailure(error)) return;
      setMessage($("movements-message"), explain(error, "actionCompare"), "error");
      return;
    }
    if (generation !== state.segmentsGeneration) return;
    state.comparison = { reply, mode, baseline, target: segmentation.version };
    renderComparison();
  }

  function renderComparison() {
    const comparison = state.comparison;
    if (comparison.note) {
      setMessage($("movements-message"), t(comparison.note));
      show($("movements-body"), false);
      return;
    }
    setMessage($("movements-message"), "");
    const reply = comparison.reply;
    const names = new Map((state.segmentation.segments || []).map((segment) => [segment.id, segmentLabel(segment)]));
    const nameOf = (id) => names.get(id) || id;
    const migration = reply.migration || {};
    const from = migration.fromSegmentIds || [];
    const to = migration.toSegmentIds || [];
    const rows = (migration.rows || []).map((row) => (row.counts || []).map(Number));
    let stayed = 0;
    rows.forEach((counts, index) => {
      const column = to.indexOf(from[index]);
      if (column >= 0) stayed += counts[column] || 0;
    });
    const common = Number(reply.commonCustomers || 0);
    const drift = {
      DRIFT_LEVEL_STABLE: t("driftStable"),
      DRIFT_LEVEL_MODERATE: t("driftModerate"),
      DRIFT_LEVEL_SIGNIFICANT: t("driftSignificant"),
    }[reply.overall] || t("driftStable");
    const heading = comparison.mode === "previous"
      ? t("movementsSincePrevious", { from: comparison.baseline, to: comparison.target })
      : t("movementsSinceBuild", { version: comparison.baseline });
    $("movements-summary").textContent = heading + t("colon") + t("movementsSummary", {
      common: integer(common),
      moved: integer(common - stayed),
      appeared: integer(reply.newCustomers),
      departed: integer(reply.departedCustomers),
      drift,
    });

    const appeared = new Set(reply.appearedSegmentIds || []);
    const vanished = new Set(reply.vanishedSegmentIds || []);
    const shifts = $("shifts-body");
    shifts.replaceChildren();
    for (const shift of reply.shifts || []) {
      const row = element("tr");
      row.dataset.segment = shift.segmentId;
      const name = element("th", nameOf(shift.segmentId));
      name.scope = "row";
      if (appeared.has(shift.segmentId)) name.append(element("span", t("appearedSegment"), "note"));
      if (vanished.has(shift.segmentId)) name.append(element("span", t("vanishedSegment"), "note"));
      const change = Number(shift.targetShare || 0) - Number(shift.baselineShare || 0);
      row.append(
        name,
        element("td", percent(shift.baselineShare), "number"),
        element("td", percent(shift.targetShare), "number"),
        element("td", points(change), `number ${change > 0 ? "up" : change < 0 ? "down" : ""}`),
      );
      shifts.append(row);
    }

    const head = element("tr");
    const corner = element("td", t("migrationCorner"), "corner");
    head.append(corner);
    for (const id of to) {
      const cell = element("th", nameOf(id));
      cell.scope = "col";
      head.append(cell);
    }
    $("migration-head").replaceChildren(head);
    const body = $("migration-body");
    body.replaceChildren();
    rows.forEach((counts, index) => {
      const row = element("tr");
      row.dataset.from = from[index];
      const name = element("th", nameOf(from[index]));
      name.scope = "row";
      row.append(name);
      counts.forEach((count, column) => {
        const cell = element("td", integer(count), "number");
        cell.dataset.to = to[column];
        if (to[column] === from[index]) cell.classList.add("stayed");
        else if (count) cell.classList.add("moved");
        row.append(cell);
      });
      body.append(row);
    });
    show($("movements-body"), true);
  }

  // ---------- live moves ----------

  function stopWatching() {
    if (state.watchAbort) state.watchAbort.abort();
    state.watchAbort = null;
    state.live = new Map();
    state.liveName = "";
    state.liveSequence = null;
    state.liveState = "";
    renderLive();
  }

  function startWatching(name) {
    stopWatching();
    state.liveName = name;
    state.watchRetryMs = WATCH_RETRY_MIN_MS;
    const controller = new AbortController();
    state.watchAbort = controller;
    watch(controller).catch(() => {});
  }

  // WatchSegmentChanges as server-sent events: live changes only at first, then, after a reconnection, those
  // after the last one seen.
  async function watch(controller) {
    const url = new URL("v1/segmentations:watchChanges", API_BASE);
    url.searchParams.set("segmentation", state.liveName);
    if (state.liveSequence !== null) url.searchParams.set("afterSequence", state.liveSequence.toString());
    try {
      const response = await fetch(url, {
        headers: requestHeaders("text/event-stream"),
        cache: "no-store",
        credentials: "omit",
        signal: controller.signal,
      });
      if (!response.ok) throw await errorOf(response);
      state.liveState = "on";
      state.watchRetryMs = WATCH_RETRY_MIN_MS;
      renderLive();
      await MatchaUI.readEventStream(response.body, controller.signal, handleEvent);
      throw new Error("the event stream ended");
    } catch (error) {
      if (controller.signal.aborted || handleAuthFailure(error)) return;
      if (error instanceof ApiError && error.httpStatus >= 400 && error.httpStatus < 500) {
        state.liveState = explain(error, "actionWatch"); // a refusal: retrying would be refused again
        renderLive();
        return;
      }
      state.liveState = "off";
      renderLive();
      const delay = state.watchRetryMs;
      state.watchRetryMs = Math.min(state.watchRetryMs * 2, WATCH_RETRY_MAX_MS);
      setTimeout(() => {
        if (state.watchAbort === controller) watch(controller).catch(() => {});
      }, delay);
    }
  }

  // One message holds the changes read from the log together: counted, then drawn once.
  function handleEvent(payload) {
    const changes = payload.changes || [];
    if (!changes.length) return;
    for (const change of changes) {
      const sequence = BigInt(change.sequence || 0);
      if (state.liveSequence === null || sequence > state.liveSequence) state.liveSequence = sequence;
      const key = `${change.fromSegmentId || ""}>${change.toSegmentId}`;
      const move = state.live.get(key) ||
        { from: change.fromSegmentId || "", to: change.toSegmentId, toName: change.toSegmentName, count: 0, time: "" };
      move.count += 1;
      move.time = change.time || move.time;
      state.live.set(key, move);
    }
    renderLive();
  }

  function renderLive() {
    const status = $("live-state");
    const list = $("live-moves");
    list.replaceChildren();
    if (!state.liveName) {
      status.textContent = "";
      return;
    }
    if (state.liveState === "on") status.textContent = t("liveOn", { name: state.liveName });
    else if (state.liveState === "off") status.textContent = t("liveOff");
    else status.textContent = state.liveState;
    if (state.liveState === "on" && !state.live.size) list.append(element("li", t("liveNone"), "empty"));
    const segments = state.segmentation && state.segmentation.name === state.liveName
      ? state.segmentation.segments || [] : [];
    const nameOf = (id, fallback) => segmentLabel(segments.find((segment) => segment.id === id)) || fallback || id;
    const moves = [...state.live.values()].sort((a, b) => b.count - a.count);
    for (const move of moves) {
      const item = element("li", t("liveMove", {
        from: move.from ? nameOf(move.from) : t("firstAssignment"),
        to: nameOf(move.to, move.toName),
        count: integer(move.count),
        time: timeOfDay(move.time),
      }));
      item.dataset.from = move.from;
      item.dataset.to = move.to;
      list.append(item);
    }
  }

  function timeOfDay(value) {
    const time = parseTime(value);
    return time ? new Intl.DateTimeFormat(state.language, { timeStyle: "medium" }).format(time) : "";
  }

  // ---------- start ----------

  function start() {
    setLanguage(preferredLanguage());
    $("language").addEventListener("change", () => setLanguage($("language").value));
    $("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      signIn($("token-input").value.trim());
    });
    $("sign-out").addEventListener("click", () => {
      history.replaceState(null, "", location.pathname + location.search);
      showSignIn(t("signedOut"));
    });
    $("open-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const id = $("experiment-input").value.trim();
      if (!id) {
        setMessage($("campaigns-message"), t("enterExperimentId"), "error");
        $("experiment-input").focus();
        return;
      }
      if (id === state.experimentId) {
        loadResults({ focus: true });
      } else {
        location.hash = experimentHref(id);
      }
    });
    $("more-campaigns").addEventListener("click", () => loadCampaigns(true));
    $("results-form").addEventListener("submit", (event) => {
      event.preventDefault();
      loadResults();
    });
    for (const id of ["outcome", "bucket"]) $(id).addEventListener("change", () => loadResults());
    $("segmentation-form").addEventListener("submit", (event) => {
      event.preventDefault();
      showSegmentation({ focus: true });
    });
    $("segmentation").addEventListener("change", () => chooseSegmentation($("segmentation").value, ""));
    $("version").addEventListener("change", () => showSegmentation());
    $("compare-with").addEventListener("change", () => showSegmentation());
    window.addEventListener("hashchange", route);
    setInterval(() => {
      if (state.claims && state.claims.exp && state.claims.exp * 1000 <= Date.now()) {
        showSignIn(t("tokenExpiredSignIn"));
      }
    }, 30000);

    const token = tokenFromFragment() || sessionStorage.getItem(TOKEN_KEY);
    if (!token || !signIn(token)) {
      if (!token) showSignIn("");
    }
  }

  start();
})();
