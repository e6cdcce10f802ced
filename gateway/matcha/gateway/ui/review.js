// The reviewers' page: the queue, an item with its provenance, decisions, live updates.
// Plain script, no build step, nothing from another origin: it only calls this gateway's
// ReviewService routes (GET /v1/reviews, GET /v1/reviews/{id}, POST .../{id}:claim|:release|:decide,
// GET /v1/reviews:watch as Server-Sent Events read with fetch, so the Authorization header is sent).
"use strict";

(() => {
  const { API_BASE, ApiError, CODE, TOKEN_KEY, decodeClaims, element, label, setMessage, show, tokenFromFragment } =
    window.MatchaUI;
  const PURPOSE = "review";
  const OPEN_STATUSES = ["REVIEW_STATUS_PENDING", "REVIEW_STATUS_REVISED"];
  const WATCH_RETRY_MAX_MS = 15000;
  const MAX_QUEUE_ITEMS = 1000;

  const $ = (id) => document.getElementById(id);
  const state = {
    token: null,
    claims: null,
    items: [],
    openItem: null, // the item as last shown
    wantedItemId: null, // the item the address names (its fetch may still be on its way)
    itemGeneration: 0,
    reloadEditor: false, // the next item shown replaces the editor's text, edited or not
    shownVersion: 0, // the version loaded into the editor: the one the reviewer decides on
    shownTitle: "",
    shownContent: "",
    lastSequence: 0n,
    watchAbort: null,
    watchRetryMs: 500,
    listTimer: null,
    listGeneration: 0,
  };

  // ---------- formatting ----------

  const statusLabel = (value) => label(value, "REVIEW_STATUS_");
  const CHANNELS = {
    CHANNEL_EMAIL: "E-mail",
    CHANNEL_LANDING_PAGE: "Landing page",
    CHANNEL_SOCIAL_POST: "Social post",
    CHANNEL_AD: "Ad",
    CHANNEL_SMS: "SMS",
    CHANNEL_PUSH: "Push",
    CHANNEL_OTHER: "Other",
  };
  const channelLabel = (value) => CHANNELS[value] || label(value, "CHANNEL_");
  const priorityLabel = (value) => label(value === "PRIORITY_UNSPECIFIED" ? "PRIORITY_NORMAL" : value, "PRIORITY_");

  function parseTime(value) {
    if (!value) return null;
    // Protobuf JSON may carry nanoseconds; Date takes milliseconds.
    const time = Date.parse(value.replace(/(\.\d{3})\d+/, "$1"));
    return Number.isNaN(time) ? null : new Date(time);
  }

  function formatTime(value) {
    const time = parseTime(value);
    return time ? time.toLocaleString() : "";
  }

  function timeLeft(value) {
    const time = parseTime(value);
    if (!time) return "";
    const minutes = Math.round((time.getTime() - Date.now()) / 60000);
    if (minutes < 0) return "overdue";
    if (minutes < 60) return `${minutes} min`;
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return `${hours} h ${minutes % 60} min`;
    return `${Math.floor(hours / 24)} d ${hours % 24} h`;
  }



  function showItemPane(visible) {
    show($("item"), visible);
    $("workspace").classList.toggle("with-item", visible); // the queue takes the whole width otherwise
  }

  // ---------- the token ----------



  function signIn(token) {
    const claims = decodeClaims(token);
    if (!claims) {
      showSignIn("This is not a Matcha token (expected three dot-separated parts).");
      return false;
    }
    if (claims.exp && claims.exp * 1000 <= Date.now()) {
      showSignIn("This token has expired. Ask for a new one.");
      return false;
    }
    state.token = token;
    state.claims = claims;
    state.lastSequence = 0n; // sequences belong to a tenant: a new token starts from live events
    sessionStorage.setItem(TOKEN_KEY, token);
    const roles = Array.isArray(claims.roles) ? claims.roles : [];
    const identity = $("identity");
    identity.textContent = `Signed in as ${claims.sub} (${roles.join(", ") || "no roles"}) in ${claims.tenant}`;
    if (!roles.includes("reviewer") && !roles.includes("admin")) {
      identity.textContent += ": without the reviewer role, decisions will be refused";
    }
    show(identity, true);
    show($("sign-out"), true);
    show($("sign-in"), false);
    show($("workspace"), true);
    refreshList();
    startWatching();
    route();
    return true;
  }

  function showSignIn(message) {
    stopWatching();
    state.token = null;
    state.claims = null;
    state.openItem = null;
    state.wantedItemId = null;
    state.items = [];
    showItemPane(false);
    sessionStorage.removeItem(TOKEN_KEY);
    show($("workspace"), false);
    show($("identity"), false);
    show($("sign-out"), false);
    show($("live-state"), false);
    show($("sign-in"), true);
    const note = $("sign-in-message");
    note.textContent = message || "";
    show(note, Boolean(message));
    $("token-input").value = "";
    $("token-input").focus();
  }

  // ---------- calls ----------



  function headers(extra) {
    return { authorization: `Bearer ${state.token}`, "x-matcha-purpose": PURPOSE, ...extra };
  }

  function call(method, path, { params, body, signal } = {}) {
    return MatchaUI.requestJson(method, path, { params, body, signal, headers: headers() });
  }

  function itemPath(itemId, verb) {
    return `v1/reviews/${encodeURIComponent(itemId)}${verb ? `:${verb}` : ""}`;
  }

  // A refusal in words a reviewer can act on; the service's own message is kept at the end.
  function explain(error) {
    if (!(error instanceof ApiError)) return "The gateway could not be reached. Check the connection and try again.";
    const meta = error.metadata;
    switch (error.reason) {
      case "MISSING_ROLE":
        return `Refused: you do not have the ${meta.role || "reviewer"} role needed for this action (${error.message}).`;
      case "FOUR_EYES":
        return "Refused by the four-eyes rule: you submitted or wrote this version, so another reviewer must decide.";
      case "CLAIMED_BY_OTHER":
        return `Refused: ${meta.claimant || "another reviewer"} has claimed this item and is reviewing it. ` +
          "Wait until the claim is released or lapses.";
      case "WRONG_STATUS":
        if (meta.status === "EXPIRED") {
          return "Refused: this item has expired (its due time passed). It can no longer be decided.";
        }
        return `Refused: this item is now ${statusLabel(meta.status) || meta.status}; only ` +
          `${(meta.expected || "pending or revised").toLowerCase()} items can be decided or claimed.`;
      case "STALE_VERSION":
        return `Refused: you reviewed version ${meta.version}, but the item is now at version ` +
          `${meta.current_version}. Load the current version, check it, then decide again.`;
      case "ITEM_NOT_FOUND":
        return "This item does not exist, or belongs to another tenant.";
      case "TOKEN_EXPIRED":
        return "Your token has expired. Sign in again with a new one.";
      default:
        break;
    }
    if (error.code === CODE.UNAUTHENTICATED) return `Your token was refused (${error.message}). Sign in again.`;
    if (error.code === CODE.INVALID_ARGUMENT && error.violations.length) {
      return "Refused: " + error.violations.map((v) => `${v.field}: ${v.description}`).join("; ") + ".";
    }
    if (error.code === CODE.PERMISSION_DENIED) return `Refused: ${error.message}.`;
    if (error.code === CODE.UNAVAILABLE) return "The review service is unavailable right now. Try again shortly.";
    return `Refused: ${error.message}`;
  }

  function handleAuthFailure(error) {
    if (error instanceof ApiError && error.code === CODE.UNAUTHENTICATED) {
      showSignIn(explain(error));
      return true;
    }
    return false;
  }

  // ---------- the queue ----------

  function listParams(pageToken) {
    const params = [["pageSize", "200"]];
    const status = $("filter-status").value;
    const statuses = status === "open" ? OPEN_STATUSES : status === "all" ? [] : [status];
    for (const value of statuses) params.push(["statuses", value]);
    if ($("filter-channel").value) params.push(["channel", $("filter-channel").value]);
    const segment = $("filter-segment").value.trim();
    if (segment) params.push(["segmentId", segment]);
    if (pageToken) params.push(["pageToken", pageToken]);
    return params;
  }

  async function refreshList() {
    const generation = ++state.listGeneration;
    const items = [];
    let pageToken = "";
    try {
      do {
        const page = await call("GET", "v1/reviews", { params: listParams(pageToken) });
        items.push(...(page.items || []));
        pageToken = page.nextPageToken || "";
      } while (pageToken && items.length < MAX_QUEUE_ITEMS);
    } catch (error) {
      if (handleAuthFailure(error)) return;
      setMessage($("queue-message"), explain(error), "error");
      return;
    }
    if (generation !== state.listGeneration) return; // a newer refresh is on its way
    setMessage($("queue-message"), pageToken
      ? `Showing the ${items.length} items due first; narrow the filters to see the others.` : "");
    state.items = items;
    renderList();
  }

  function scheduleListRefresh() {
    clearTimeout(state.listTimer);
    state.listTimer = setTimeout(refreshList, 150);
  }

  function renderList() {
    const body = $("queue-body");
    const focusedId = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.itemId
      : null;
    body.replaceChildren();
    const openId = state.openItem ? state.openItem.id : null;
    for (const item of state.items) {
      const row = element("tr");
      row.dataset.itemId = item.id;
      if (item.id === openId) row.classList.add("current");
      const titleCell = element("td");
      const link = element("a", item.title || "(untitled)", "item-link");
      link.href = `#item=${encodeURIComponent(item.id)}`;
      link.dataset.itemId = item.id;
      if (item.id === openId) link.setAttribute("aria-current", "true");
      titleCell.append(link);
      const claimant = item.claim && item.claim.reviewerSubject;
      const due = timeLeft(item.dueTime);
      const dueCell = element("td", due, due === "overdue" ? "time-left overdue" : "time-left");
      dueCell.dataset.due = item.dueTime || "";
      dueCell.title = formatTime(item.dueTime);
      row.append(
        titleCell,
        element("td", statusLabel(item.status), `status status-${(item.status || "").toLowerCase()}`),
        element("td", channelLabel(item.channel)),
        element("td", segmentOf(item)),
        element("td", priorityLabel(item.priority), `priority ${(item.priority || "").toLowerCase()}`),
        dueCell,
        element("td", claimant || ""),
      );
      body.append(row);
    }
    show($("queue-empty"), state.items.length === 0);
    if (focusedId) {
      const again = body.querySelector(`a[data-item-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus();
    }
  }

  function segmentOf(item) {
    const audience = item.audience || {};
    if (audience.persona && audience.segmentId) return `${audience.persona} (${audience.segmentId})`;
    return audience.persona || audience.segmentId || "";
  }

  function refreshTimesLeft() {
    for (const cell of document.querySelectorAll("td[data-due]")) {
      cell.textContent = timeLeft(cell.dataset.due);
      cell.classList.toggle("overdue", cell.textContent === "overdue");
    }
  }

  // ---------- one item ----------

  function route() {
    if (!state.token) return;
    const itemId = new URLSearchParams(location.hash.slice(1)).get("item");
    const leaving = state.openItem && state.openItem.id !== itemId;
    if (leaving && editorDirty() && !confirm(`Discard your edit of "${state.openItem.title || "(untitled)"}"?`)) {
      history.replaceState(null, "", `#item=${encodeURIComponent(state.openItem.id)}`);
      return;
    }
    if (itemId) {
      openItem(itemId);
    } else {
      closeItem();
    }
  }

  // Item fetches overlap (a burst of events, a navigation): only the answer to the latest one started is
  // shown, so an older answer never overwrites a newer state.
  async function fetchItem(itemId) {
    const generation = ++state.itemGeneration;
    const reply = await call("GET", itemPath(itemId));
    return generation === state.itemGeneration && state.wantedItemId === itemId ? reply : null;
  }

  function applyItem(reply) {
    const item = reply.item;
    const newItem = !state.openItem || state.openItem.id !== item.id;
    const changedVersion = item.version !== state.shownVersion;
    // A reviewer's edit survives updates of the same item; deciding on it would then be refused as stale,
    // so the page says so at once.
    const keepEdit = !newItem && !state.reloadEditor && editorDirty();
    state.reloadEditor = false;
    renderItem(item, reply.history || [], { loadEditor: !keepEdit });
    renderList();
    if (newItem) {
      setMessage($("item-message"), "");
      $("item-heading").focus();
    } else if (keepEdit && changedVersion) {
      setMessage($("item-message"),
        `This item changed while you were editing: it is now at version ${item.version} ` +
        `(${statusLabel(item.status).toLowerCase()}). Your edit is kept; load the current version to decide.`,
        "warning");
      show($("reload-item"), true);
    }
  }

  async function openItem(itemId) {
    state.wantedItemId = itemId;
    state.reloadEditor = true;
    let reply;
    try {
      reply = await fetchItem(itemId);
    } catch (error) {
      if (handleAuthFailure(error) || state.wantedItemId !== itemId) return;
      state.openItem = null;
      showItemPane(true);
      show($("item-body"), false);
      $("item-heading").textContent = "Item not available";
      $("item-summary").textContent = "";
      setMessage($("item-message"), explain(error), "error");
      $("item-message").focus();
      return;
    }
    if (reply) applyItem(reply);
  }

  async function loadCurrentVersion(itemId) {
    state.reloadEditor = true;
    let reply;
    try {
      reply = await fetchItem(itemId);
    } catch (error) {
      refuse(error);
      return;
    }
    if (reply) applyItem(reply);
  }

  async function refreshOpenItem(itemId) {
    let reply;
    try {
      reply = await fetchItem(itemId);
    } catch (error) {
      handleAuthFailure(error);
      return;
    }
    if (reply) applyItem(reply);
  }

  function closeItem() {
    const previous = state.openItem;
    state.openItem = null;
    state.wantedItemId = null;
    state.itemGeneration++; // answers on their way are for an item no longer shown
    showItemPane(false);
    renderList();
    const link = previous && document.querySelector(`a[data-item-id="${CSS.escape(previous.id)}"]`);
    if (link) link.focus();
  }

  function editorDirty() {
    return $("edit-title").value !== state.shownTitle || $("edit-content").value !== state.shownContent;
  }

  function renderItem(item, history, { loadEditor }) {
    state.openItem = item;
    showItemPane(true);
    show($("item-body"), true);
    $("item-heading").textContent = item.title || "(untitled)";
    const parts = [
      statusLabel(item.status),
      `version ${item.version}`,
      channelLabel(item.channel) + (item.target ? ` (${item.target})` : ""),
      `priority ${priorityLabel(item.priority).toLowerCase()}`,
      `due ${formatTime(item.dueTime)} (${timeLeft(item.dueTime)})`,
      `submitted by ${item.submitterSubject}`,
    ];
    if (item.fourEyes) parts.push("four-eyes");
    if (item.claim && item.claim.reviewerSubject) {
      parts.push(`claimed by ${item.claim.reviewerSubject} until ${formatTime(item.claim.expireTime)}`);
    }
    $("item-summary").textContent = parts.join(" · ");

    if (loadEditor) {
      state.shownVersion = item.version;
      state.shownTitle = item.title || "";
      state.shownContent = item.content || "";
      $("edit-title").value = state.shownTitle;
      $("edit-content").value = state.shownContent;
      $("decision-comment").value = "";
      show($("reload-item"), false);
    }
    updateEditState();
    renderDecisionControls(item);
    renderProvenance(item);
    renderHistory(item, history);
  }

  function renderDecisionControls(item) {
    const open = OPEN_STATUSES.includes(item.status);
    const closed = $("decision-closed");
    if (open) {
      show(closed, false);
    } else {
      closed.textContent = item.status === "REVIEW_STATUS_APPROVED"
        ? `Approved: version ${item.approvedVersion}, SHA-256 ${item.approvedSha256}.`
        : `This item is ${statusLabel(item.status).toLowerCase()}; there is nothing to decide.`;
      show(closed, true);
    }
    for (const id of ["approve", "request-changes", "reject", "claim"]) $(id).disabled = !open;
    $("edit-title").readOnly = !open;
    $("edit-content").readOnly = !open;
    const mine = state.claims && item.claim && item.claim.reviewerSubject === state.claims.sub;
    $("claim").textContent = mine ? "Extend claim" : "Claim";
    show($("release"), Boolean(mine));
  }

  function versioned(name, version) {
    return name ? `${name}${version ? ` v${version}` : ""}` : "";
  }

  function renderProvenance(item) {
    const provenance = item.provenance || {};
    const model = provenance.model || {};
    const audience = item.audience || {};
    const rows = [
      ["Segment", segmentOf(item)],
      ["Segmentation", versioned(audience.segmentation, audience.segmentationVersion)],
      ["Model", model.id ? `${model.id}${model.version ? ` (${model.version})` : ""}` : ""],
      ["Prompt", versioned(provenance.promptTemplate, provenance.promptTemplateVersion)],
      ["Voice profile", versioned(provenance.voiceProfile, provenance.voiceProfileVersion)],
      ["Plan", versioned(provenance.planName, provenance.planVersion)],
      ["Step", provenance.step],
      ["Run", provenance.runId],
      ["Trace", provenance.traceId],
      ["Produced", formatTime(provenance.createTime)],
    ];
    const list = $("provenance-list");
    list.replaceChildren();
    for (const [name, value] of rows) {
      if (!value) continue;
      list.append(element("dt", name), element("dd", value));
    }
    if (!list.children.length) list.append(element("dt", "Origin"), element("dd", "no provenance recorded"));

    $("voice-score").textContent = typeof item.voiceScore === "number"
      ? `Voice score: ${Math.round(item.voiceScore * 10) / 10} / 100`
      : "Voice score: not scored";
    const flags = $("flags");
    flags.replaceChildren();
    for (const flag of item.flags || []) {
      const severity = label(flag.severity === "FLAG_SEVERITY_UNSPECIFIED" ? "FLAG_SEVERITY_INFO" : flag.severity,
        "FLAG_SEVERITY_");
      const entry = element("li", null, `flag flag-${severity.toLowerCase()}`);
      entry.append(element("strong", `${severity}: `), element("code", flag.code), ` ${flag.message || ""}`);
      for (const span of flag.spans || []) {
        const quoted = Array.from(item.content || "").slice(span.start || 0, span.end || 0).join("");
        if (quoted) entry.append(" ", element("q", quoted));
      }
      flags.append(entry);
    }
    if (!flags.children.length) flags.append(element("li", "No flags."));
    const sources = $("sources");
    sources.replaceChildren();
    for (const record of provenance.sourceRecordIds || []) sources.append(element("li", record, "source"));
    if (!sources.children.length) sources.append(element("li", "None recorded."));
  }

  const ORIGINS = {
    VERSION_ORIGIN_AI_DRAFT: "AI draft",
    VERSION_ORIGIN_HUMAN_EDIT: "human edit",
    VERSION_ORIGIN_REGENERATED: "regenerated by AI",
  };

  function renderHistory(item, history) {
    const versions = $("versions");
    versions.replaceChildren();
    for (const version of item.versions || []) {
      const entry = element("li");
      entry.append(element("p",
        `Version ${version.number}: ${ORIGINS[version.origin] || "unknown origin"} by ` +
        `${version.authorSubject || "?"}, ${formatTime(version.createTime)}` +
        (version.comment ? `: ${version.comment}` : "")));
      const producedBy = version.provenance && version.provenance.model && version.provenance.model.id;
      if (producedBy && version.number > 1) entry.append(element("p", `Model: ${producedBy}`, "note"));
      entry.append(element("p", `SHA-256 ${version.contentSha256}`, "digest"));
      if (version.diffFromPrevious) entry.append(element("pre", version.diffFromPrevious, "diff"));
      versions.append(entry);
    }
    const decisions = $("decisions");
    decisions.replaceChildren();
    for (const decision of item.decisions || []) {
      decisions.append(element("li",
        `${label(decision.outcome, "DECISION_OUTCOME_")} by ${decision.reviewerSubject} on version ` +
        `${decision.version}, ${formatTime(decision.decideTime)}` + (decision.comment ? `: ${decision.comment}` : "")));
    }
    if (!decisions.children.length) decisions.append(element("li", "No decision yet."));
    if (item.approvedDiff) {
      const entry = element("li", "Changes from the AI draft to the approved text:");
      entry.append(element("pre", item.approvedDiff, "diff"));
      decisions.append(entry);
    }
    const events = $("events");
    events.replaceChildren();
    for (const event of history) {
      events.append(element("li",
        `${formatTime(event.time)}: ${label(event.type, "REVIEW_EVENT_TYPE_").toLowerCase()}` +
        (event.actorSubject ? ` by ${event.actorSubject}` : "") + ` (version ${event.version})`));
    }
  }

  function updateEditState() {
    const item = state.openItem;
    if (!item) return;
    const dirty = editorDirty();
    $("edit-state").textContent = dirty
      ? `Edited: approving stores your text as a new version and approves it (based on version ${state.shownVersion}).`
      : `Unchanged from version ${state.shownVersion}.`;
    renderPreview(item.format, $("edit-content").value);
  }

  // ---------- HTML preview ----------

  // HTML drafts are previewed through an allow-list: elements are rebuilt, not copied, so no script,
  // style, event handler or foreign resource can come through (the CSP would block them anyway).
  const ALLOWED_TAGS = new Set([
    "p", "br", "strong", "b", "em", "i", "u", "s", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "blockquote", "code", "pre", "span", "div", "a", "hr", "small", "sub", "sup", "table", "thead", "tbody",
    "tr", "th", "td",
  ]);

  function sanitisedCopy(source, target) {
    for (const node of source.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) {
        target.append(node.textContent);
      } else if (node.nodeType === Node.ELEMENT_NODE) {
        const tag = node.tagName.toLowerCase();
        if (!ALLOWED_TAGS.has(tag)) {
          if (!["script", "style", "template", "iframe", "object", "embed"].includes(tag)) sanitisedCopy(node, target);
          continue;
        }
        const copy = document.createElement(tag);
        if (tag === "a") {
          const href = node.getAttribute("href") || "";
          if (/^(https?:|mailto:)/i.test(href)) {
            copy.href = href;
            copy.rel = "noopener noreferrer";
            copy.target = "_blank";
          }
        }
        sanitisedCopy(node, copy);
        target.append(copy);
      }
    }
  }

  function renderPreview(format, content) {
    const block = $("preview-block");
    const preview = $("preview");
    preview.replaceChildren();
    if (format !== "CONTENT_FORMAT_HTML") {
      show(block, false);
      return;
    }
    const parsed = new DOMParser().parseFromString(content, "text/html");
    sanitisedCopy(parsed.body, preview);
    show(block, true);
  }

  // ---------- actions ----------


  function refuse(error) {
    if (handleAuthFailure(error)) return;
    setMessage($("item-message"), explain(error), "error");
    if (error instanceof ApiError && error.reason === "STALE_VERSION") show($("reload-item"), true);
    $("item-message").focus();
  }

  async function decide(outcome) {
    const item = state.openItem;
    if (!item) return;
    const comment = $("decision-comment").value.trim();
    if (outcome !== "DECISION_OUTCOME_APPROVE" && !comment) {
      setMessage($("item-message"), "A comment is required to reject or request changes: say what should change.",
        "error");
      $("decision-comment").focus();
      return;
    }
    const body = { version: state.shownVersion, outcome, comment };
    if (outcome === "DECISION_OUTCOME_APPROVE" && editorDirty()) {
      body.edit = { title: $("edit-title").value, content: $("edit-content").value };
    }
    setBusy(true);
    try {
      const reply = await call("POST", itemPath(item.id, "decide"), { body });
      const decision = reply.decision || {};
      await loadCurrentVersion(item.id); // with its full history
      setMessage($("item-message"),
        `${label(outcome, "DECISION_OUTCOME_")}: recorded on version ${decision.version} ` +
        `(SHA-256 ${decision.contentSha256}).`, "success");
      $("item-message").focus();
      scheduleListRefresh();
    } catch (error) {
      refuse(error);
    } finally {
      setBusy(false);
    }
  }

  async function claim(verb) {
    const item = state.openItem;
    if (!item) return;
    setBusy(true);
    try {
      await call("POST", itemPath(item.id, verb), { body: {} });
      await refreshOpenItem(item.id);
      setMessage($("item-message"), verb === "claim"
        ? "Claimed: other reviewers see that you are reviewing this item."
        : "Claim released.", "success");
      $("item-message").focus();
      scheduleListRefresh();
    } catch (error) {
      refuse(error);
    } finally {
      setBusy(false);
    }
  }

  function setBusy(busy) {
    $("decision-form").setAttribute("aria-busy", busy ? "true" : "false");
    for (const button of $("decision-form").querySelectorAll("button")) button.disabled = busy;
    // What may be done next depends on the item as it is now (e.g. nothing once it is approved).
    if (!busy && state.openItem) renderDecisionControls(state.openItem);
  }

  // ---------- live updates ----------

  function setLiveState(text, kind) {
    const node = $("live-state");
    node.textContent = text;
    node.className = `live-state live-${kind}`;
    show(node, true);
  }

  function stopWatching() {
    if (state.watchAbort) state.watchAbort.abort();
    state.watchAbort = null;
  }

  function startWatching() {
    stopWatching();
    const controller = new AbortController();
    state.watchAbort = controller;
    watch(controller).catch(() => {});
  }

  async function watch(controller) {
    const url = new URL("v1/reviews:watch", API_BASE);
    // 0 streams live events only; after a reconnection, the events missed meanwhile are replayed.
    url.searchParams.set("afterSequence", state.lastSequence.toString());
    try {
      const response = await fetch(url, {
        headers: headers({ accept: "text/event-stream" }),
        cache: "no-store",
        signal: controller.signal,
      });
      if (!response.ok) {
        let status = null;
        try {
          status = await response.json();
        } catch {
          status = null;
        }
        throw new ApiError(response.status, status);
      }
      setLiveState("Live", "on");
      state.watchRetryMs = 500;
      // Whatever changed before the stream was open is picked up here.
      scheduleListRefresh();
      if (state.wantedItemId) refreshOpenItem(state.wantedItemId);
      await MatchaUI.readEventStream(response.body, controller.signal, handleEvent);
      throw new Error("the event stream ended");
    } catch (error) {
      if (controller.signal.aborted) return;
      if (handleAuthFailure(error)) return;
      setLiveState("Live updates interrupted: reconnecting", "off");
      const delay = state.watchRetryMs;
      state.watchRetryMs = Math.min(state.watchRetryMs * 2, WATCH_RETRY_MAX_MS);
      setTimeout(() => {
        if (state.watchAbort === controller) startWatching();
      }, delay);
    }
  }

  function handleEvent(payload) {
    const event = payload.event;
    if (!event) return;
    const sequence = BigInt(event.sequence || 0);
    if (sequence > state.lastSequence) state.lastSequence = sequence;
    scheduleListRefresh();
    if (state.wantedItemId && event.itemId === state.wantedItemId) refreshOpenItem(event.itemId);
  }

  // ---------- keyboard ----------

  function queueLinks() {
    return Array.from(document.querySelectorAll("#queue-body a.item-link"));
  }

  function onKey(event) {
    if (!state.token || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement ||
      target instanceof HTMLSelectElement;
    if (typing) return;
    if (event.key === "Escape" && !$("item").hidden) {
      event.preventDefault();
      location.hash = "";
      return;
    }
    if (event.key !== "j" && event.key !== "k") return;
    const links = queueLinks();
    if (!links.length) return;
    event.preventDefault();
    const current = links.indexOf(document.activeElement);
    const openIndex = state.openItem ? links.findIndex((link) => link.dataset.itemId === state.openItem.id) : -1;
    const from = current >= 0 ? current : openIndex;
    const next = event.key === "j" ? Math.min(from + 1, links.length - 1) : Math.max(from - 1, 0);
    links[from < 0 ? 0 : next].focus();
  }

  // ---------- start ----------

  function start() {
    $("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      signIn($("token-input").value.trim());
    });
    $("sign-out").addEventListener("click", () => {
      location.hash = "";
      showSignIn("Signed out.");
    });
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      refreshList();
    });
    for (const id of ["filter-status", "filter-channel"]) $(id).addEventListener("change", refreshList);
    $("decision-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const outcome = event.submitter && event.submitter.value;
      if (outcome) decide(outcome);
    });
    $("claim").addEventListener("click", () => claim("claim"));
    $("release").addEventListener("click", () => claim("release"));
    $("reload-item").addEventListener("click", async () => {
      if (!state.openItem) return;
      await loadCurrentVersion(state.openItem.id); // the reviewer's edit is discarded, as the button says
      setMessage($("item-message"), "Loaded the current version.", "success");
      $("edit-content").focus();
    });
    $("back-to-queue").addEventListener("click", (event) => {
      event.preventDefault();
      location.hash = "";
    });
    for (const id of ["edit-title", "edit-content"]) $(id).addEventListener("input", updateEditState);
    window.addEventListener("hashchange", route);
    document.addEventListener("keydown", onKey);
    setInterval(() => {
      if (state.claims && state.claims.exp && state.claims.exp * 1000 <= Date.now()) {
        showSignIn("Your token has expired. Sign in again with a new one.");
        return;
      }
      refreshTimesLeft();
    }, 30000);

    const token = tokenFromFragment() || sessionStorage.getItem(TOKEN_KEY);
    if (!token || !signIn(token)) {
      if (!token) showSignIn("");
    }
  }

  start();
})();
