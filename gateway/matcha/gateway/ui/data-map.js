// The data-protection officer's page: a data subject's data map (GetDataMap), the accesses to their records
// (its `accesses`, then ListAudit on the accesses ledger), the export as a JSON file, and the verification of
// both audit ledgers (VerifyAudit). Plain script, no build step, nothing from another origin: it only calls this
// gateway's ConductorService routes (GET /v1/subjects/{id}:dataMap, GET /v1/audit/records, POST /v1/audit:verify).
//
// The subject's data stays in this page's memory: the subject id is never put in the address (a fragment would
// land in the history, which outlives the tab), and nothing but the token goes to sessionStorage.
"use strict";

(() => {
  const { API_BASE, ApiError, CODE, TOKEN_KEY, decodeClaims, element, label, setMessage, show, tokenFromFragment } =
    window.MatchaUI;
  // What the access ledger records for these reads; the service answers an access request with the person's
  // personal data only to a caller declaring PERSONAL.
  const PURPOSE = "data-map";
  const DATA_CLASS = "PERSONAL";
  const ACCESSES_PAGE_SIZE = "1000"; // ListAudit's largest page, as many as the data map gives at first
  const READER_ROLES = ["auditor", "admin"];

  const $ = (id) => document.getElementById(id);
  const state = {
    token: null,
    claims: null,
    subject: "",
    map: null, // the GetDataMap reply as received: what the download holds
    accesses: [],
    accessesToken: "", // ListAudit token of the page to read next ("" from the start)
    mapGeneration: 0,
  };

  // ---------- formatting ----------


  function classLabel(value) {
    return !value || value === "DATA_CLASS_UNSPECIFIED" ? "" : label(value, "DATA_CLASS_");
  }

  function storeName(store) {
    return (store || "").split(".").pop();
  }

  function formatTime(value) {
    if (!value) return "";
    // Protobuf JSON may carry nanoseconds; Date takes milliseconds.
    const time = Date.parse(value.replace(/(\.\d{3})\d+/, "$1"));
    return Number.isNaN(time) ? value : new Date(time).toLocaleString();
  }

  function plural(count, word, many) {
    return `${count} ${Number(count) === 1 ? word : many || `${word}s`}`;
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
    sessionStorage.setItem(TOKEN_KEY, token);
    const roles = Array.isArray(claims.roles) ? claims.roles : [];
    const identity = $("identity");
    identity.textContent = `Signed in as ${claims.sub} (${roles.join(", ") || "no roles"}) in ${claims.tenant}`;
    if (!roles.some((role) => READER_ROLES.includes(role))) {
      identity.textContent += ": without the auditor role, the data map and the ledgers will be refused";
    }
    show(identity, true);
    show($("sign-out"), true);
    show($("sign-in"), false);
    show($("workspace"), true);
    $("subject-input").focus();
    return true;
  }

  function showSignIn(message) {
    state.token = null;
    state.claims = null;
    clearMap();
    $("subject-input").value = "";
    $("verify-results").replaceChildren();
    setMessage($("verify-message"), "");
    setMessage($("map-message"), "");
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


  // google.rpc.Code names, as the gateway's replies carry their numbers.
  const CODE_NAMES = [
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
  ];

  function call(method, path, { params, body } = {}) {
    const headers = {
      authorization: `Bearer ${state.token}`,
      "x-matcha-purpose": PURPOSE,
      "x-matcha-data-class": DATA_CLASS,
    };
    return MatchaUI.requestJson(method, path, { params, body, headers });
  }

  // A refusal in words an officer can act on; the service's own message is kept at the end.
  function explain(error, action) {
    if (!(error instanceof ApiError)) {
      return `Network error: the gateway could not be reached to ${action}. Check the connection and try again.`;
    }
    const meta = error.metadata;
    switch (error.reason) {
      case "MISSING_ROLE":
        return `Refused: you do not have the ${meta.role || "auditor"} role needed to ${action} ` +
          `(ask for a token with the ${meta.role || "auditor"} or admin role). ${error.message}`;
      case "TOKEN_EXPIRED":
        return "Your token has expired. Sign in again with a new one.";
      case "SERVICE_NOT_CONFIGURED":
        return `This gateway has no conductor configured, so it cannot ${action}.`;
      default:
        break;
    }
    if (error.code === CODE.UNAUTHENTICATED) return `Your token was refused (${error.message}). Sign in again.`;
    if (error.code === CODE.INVALID_ARGUMENT && error.violations.length) {
      return "Refused: " + error.violations.map((v) => `${v.field}: ${v.description}`).join("; ") + ".";
    }
    if (error.code === CODE.UNAVAILABLE) {
      return `The conductor is unavailable right now, so the page could not ${action}. Try again shortly.`;
    }
    return `Could not ${action}: ${error.message} (HTTP ${error.httpStatus}).`;
  }

  function handleAuthFailure(error) {
    if (error instanceof ApiError && error.code === CODE.UNAUTHENTICATED) {
      showSignIn(explain(error, "sign in"));
      return true;
    }
    return false;
  }

  // ---------- the data map ----------

  function clearMap() {
    state.mapGeneration += 1; // an answer still on its way is dropped
    state.subject = "";
    state.map = null;
    state.accesses = [];
    state.accessesToken = "";
    for (const id of ["holdings-body", "records", "accesses-body", "unanswered-list"]) $(id).replaceChildren();
    setMessage($("accesses-message"), "");
    show($("map"), false);
  }

  async function showMap(subject) {
    clearMap();
    setMessage($("map-message"), "");
    if (!subject) {
      setMessage($("map-message"), "Enter the id of a data subject, e.g. the customer id your stores know.", "error");
      $("subject-input").focus();
      return;
    }
    const generation = state.mapGeneration;
    setMessage($("map-message"), `Asking every store about ${subject}…`);
    $("show-map").disabled = true;
    let reply;
    try {
      reply = await call("GET", `v1/subjects/${encodeURIComponent(subject)}:dataMap`);
    } catch (error) {
      if (generation !== state.mapGeneration || handleAuthFailure(error)) return;
      setMessage($("map-message"), explain(error, "read the data map"), "error");
      $("map-message").focus();
      return;
    } finally {
      $("show-map").disabled = false;
    }
    if (generation !== state.mapGeneration) return;
    setMessage($("map-message"), "");
    state.subject = subject;
    state.map = reply;
    state.accesses = reply.accesses || [];
    renderMap(reply);
    renderAccesses();
    show($("map"), true);
    $("map-heading").focus();
  }

  function renderMap(reply) {
    const stores = reply.stores || [];
    const unanswered = stores.filter((store) => store.status && store.status.code);
    $("map-heading").textContent = `Data map of ${reply.subjectId || state.subject}`;
    const held = stores.reduce((sum, store) => sum + (store.holdings || []).length, 0);
    $("map-summary").textContent = (reply.complete
      ? `Complete: all ${plural(stores.length, "store")} answered`
      : `Incomplete: ${plural(unanswered.length, "store")} of ${stores.length} did not answer`) +
      `; ${plural(held, "kind")} of record held.`;

    const list = $("unanswered-list");
    for (const store of unanswered) {
      const status = store.status;
      list.append(element("li",
        `${storeName(store.store)}: ${CODE_NAMES[status.code] || `code ${status.code}`}` +
        (status.message ? `: ${status.message}` : "")));
    }
    show($("unanswered"), unanswered.length > 0);

    const body = $("holdings-body");
    const records = $("records");
    for (const store of stores) {
      const name = storeName(store.store);
      if (store.status && store.status.code) {
        const row = element("tr", null, "unanswered");
        const cell = element("td", `did not answer (${CODE_NAMES[store.status.code] || store.status.code})`);
        cell.colSpan = 8;
        row.append(element("th", name), cell);
        row.firstChild.scope = "row";
        body.append(row);
        continue;
      }
      if (!(store.holdings || []).length) {
        const row = element("tr", null, "nothing-held");
        const cell = element("td", "holds nothing about this subject");
        cell.colSpan = 8;
        row.append(element("th", name), cell);
        row.firstChild.scope = "row";
        body.append(row);
      }
      for (const holding of store.holdings || []) {
        const exported = (holding.records || []).length;
        const row = element("tr");
        const storeCell = element("th", name);
        storeCell.scope = "row";
        row.append(
          storeCell,
          element("td", holding.kind),
          element("td", holding.scope || ""),
          element("td", holding.count, "number"),
          element("td", classLabel(holding.highestDataClass)),
          element("td", (holding.purposes || []).join(", ") || "none recorded"),
          element("td", exported, "number"),
          element("td", holding.withheld || 0, "number"),
          element("td", holding.truncated ? "yes: the export limits left records out" : "no"),
        );
        body.append(row);
        if (exported) records.append(recordsBlock(name, holding));
      }
    }
    show($("holdings-empty"), held === 0);
    if (!records.children.length) records.append(element("p", "No record was exported.", "empty"));
  }

  function recordsBlock(name, holding) {
    // Collapsed until asked for: the content is the person's data.
    const block = element("details", null, "store-records");
    const count = (holding.records || []).length;
    block.append(
      element("summary", `${name}, ${holding.kind}${holding.scope ? ` (${holding.scope})` : ""}: ` +
        plural(count, "record")),
      element("pre", JSON.stringify(holding.records, null, 2)),
    );
    return block;
  }

  function download() {
    if (!state.map) return;
    const text = JSON.stringify(state.map, null, 2) + "\n";
    const blob = new Blob([text], { type: "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    // The file is the subject's own data, named after them for whoever answers the request.
    const safe = state.subject.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 80) || "subject";
    link.download = `data-map-${safe}-${new Date().toISOString().slice(0, 10)}.json`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 0);
  }

  // ---------- accesses ----------

  function accessRow(access) {
    const row = element("tr");
    const decision = label(access.decision, "POLICY_DECISION_");
    const method = access.method || "";
    const principal = access.principal || {};
    const time = element("td", formatTime(access.time), "time");
    time.title = access.time || "";
    const methodCell = element("td", method.split(".").pop());
    methodCell.title = method;
    row.dataset.sequence = access.sequence;
    row.append(
      time,
      element("td", principal.subject || ""),
      element("td", (principal.roles || []).join(", ")),
      element("td", access.purpose || ""),
      methodCell,
      element("td", classLabel(access.dataClassDeclared) || "not declared"),
      element("td", classLabel(access.dataClassDerived) || "none"),
      element("td", access.records || 0, "number"),
      element("td", decision, decision === "Deny" ? "deny" : ""),
      element("td", access.reason || ""),
    );
    return row;
  }

  function renderAccesses(added) {
    const body = $("accesses-body");
    const rows = added === undefined ? state.accesses : added;
    for (const access of rows) body.append(accessRow(access));
    let summary = state.accesses.length
      ? `${plural(state.accesses.length, "access", "accesses")} on the record, oldest first.`
      : "No access to this subject's records on the record.";
    if (added !== undefined) {
      summary += added.length ? ` ${added.length} loaded now.` : " No later access on the record.";
    }
    $("accesses-summary").textContent = summary;
  }

  function lastSequence() {
    const last = state.accesses[state.accesses.length - 1];
    return last ? BigInt(last.sequence) : 0n;
  }

  // The data map gives the first accesses without a page token, so paging starts again from the ledger's first
  // page and skips by sequence the rows already shown; a page that ends the list is read again next time, since
  // new accesses are appended after it.
  async function loadLaterAccesses() {
    const generation = state.mapGeneration;
    const subject = state.subject;
    const added = [];
    let token = state.accessesToken;
    $("more-accesses").disabled = true;
    setMessage($("accesses-message"), "");
    try {
      for (;;) {
        const params = [["ledger", "AUDIT_LEDGER_ACCESSES"], ["subjectId", subject], ["pageSize", ACCESSES_PAGE_SIZE]];
        if (token) params.push(["pageToken", token]);
        const page = await call("GET", "v1/audit/records", { params });
        if (generation !== state.mapGeneration) return;
        const after = added.length ? BigInt(added[added.length - 1].sequence) : lastSequence();
        added.push(...(page.accesses || []).filter((access) => BigInt(access.sequence) > after));
        if (!page.nextPageToken) break;
        token = page.nextPageToken;
        if (added.length) break;
      }
    } catch (error) {
      if (generation !== state.mapGeneration || handleAuthFailure(error)) return;
      setMessage($("accesses-message"), explain(error, "read the accesses ledger"), "error");
      $("accesses-message").focus();
      return;
    } finally {
      $("more-accesses").disabled = false;
    }
    state.accessesToken = token;
    state.accesses.push(...added);
    renderAccesses(added);
  }

  // ---------- the ledgers ----------

  const LEDGERS = [
    ["AUDIT_LEDGER_HOPS", "Hops of runs"],
    ["AUDIT_LEDGER_ACCESSES", "Accesses"],
  ];

  function verification(reply) {
    const node = element("dd");
    if (reply.intact) {
      node.append(element("span", "Intact", "intact"));
      node.append(Number(reply.headSequence)
        ? `: ${plural(reply.recordsChecked, "row")} checked; head row ${reply.headSequence}, hash `
        : ": no row yet.");
    } else {
      node.append(element("span", "Broken", "broken"));
      node.append(`: row ${reply.firstBrokenSequence} ${label(reply.breakKind, "CHAIN_BREAK_").toLowerCase()}; ` +
        `${plural(reply.recordsChecked, "row")} checked; head row ${reply.headSequence}, hash `);
    }
    if (Number(reply.headSequence)) node.append(element("code", reply.headHash, "digest head-hash"));
    return node;
  }

  async function verifyLedgers() {
    const results = $("verify-results");
    results.replaceChildren();
    setMessage($("verify-message"), "Verifying…");
    $("verify-ledgers").disabled = true;
    const outcomes = await Promise.allSettled(
      LEDGERS.map(([ledger]) => call("POST", "v1/audit:verify", { body: { ledger } })),
    );
    $("verify-ledgers").disabled = false;
    const failure = outcomes.find((outcome) => outcome.status === "rejected");
    if (failure && handleAuthFailure(failure.reason)) return;
    LEDGERS.forEach(([ledger, name], index) => {
      const outcome = outcomes[index];
      const term = element("dt", name);
      term.dataset.ledger = ledger;
      results.append(term, outcome.status === "fulfilled"
        ? verification(outcome.value)
        : element("dd", `Not verified: ${explain(outcome.reason, "verify the ledgers")}`));
    });
    if (failure) {
      setMessage($("verify-message"), explain(failure.reason, "verify the ledgers"), "error");
      $("verify-message").focus();
    } else {
      setMessage($("verify-message"), "");
    }
  }

  // ---------- start ----------

  function start() {
    $("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      signIn($("token-input").value.trim());
    });
    $("sign-out").addEventListener("click", () => showSignIn("Signed out."));
    $("subject-form").addEventListener("submit", (event) => {
      event.preventDefault();
      showMap($("subject-input").value.trim());
    });
    $("download").addEventListener("click", download);
    $("more-accesses").addEventListener("click", loadLaterAccesses);
    $("verify-ledgers").addEventListener("click", verifyLedgers);
    setInterval(() => {
      if (state.claims && state.claims.exp && state.claims.exp * 1000 <= Date.now()) {
        showSignIn("Your token has expired. Sign in again with a new one.");
      }
    }, 30000);

    const token = tokenFromFragment() || sessionStorage.getItem(TOKEN_KEY);
    if (!token || !signIn(token)) {
      if (!token) showSignIn("");
    }
  }

  start();
})();
