// What the gateway's pages share: the sign-in token (kept in this tab, taken from the address fragment), the
// gateway's error bodies, and small display helpers. A plain script loaded before each page's own; its one
// global is MatchaUI.
"use strict";

window.MatchaUI = (() => {
  // One sign-in serves every page of this tab.
  const TOKEN_KEY = "matcha.review.token";
  // The API lives one level above the pages (/ui/ -> /), so a gateway behind a path prefix still works.
  const API_BASE = new URL("../", document.baseURI);
  // google.rpc.Code numbers, as the gateway's error bodies carry them.
  const CODE = { INVALID_ARGUMENT: 3, NOT_FOUND: 5, PERMISSION_DENIED: 7, UNAVAILABLE: 14, UNAUTHENTICATED: 16 };

  function label(enumValue, prefix) {
    if (!enumValue) return "";
    const words = enumValue.replace(prefix, "").toLowerCase().replaceAll("_", " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function setMessage(node, text, kind) {
    node.textContent = text || "";
    node.className = `message${kind ? ` message-${kind}` : ""}`;
    show(node, Boolean(text));
  }

  function decodeClaims(token) {
    // For display only (who am I, until when); the gateway and the services verify the signature.
    const parts = token.split(".");
    if (parts.length !== 3) return null;
    try {
      const base64 = parts[1].replaceAll("-", "+").replaceAll("_", "/");
      const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
      const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return null;
    }
  }

  function tokenFromFragment() {
    // A launcher prints `.../ui/#token=...`: fragments never reach a server. Take it, then drop it from
    // the address bar and the history (other fragment parameters stay).
    const fragment = new URLSearchParams(location.hash.slice(1));
    const token = fragment.get("token");
    if (!token) return null;
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
    return token.trim();
  }

  class ApiError extends Error {
    constructor(httpStatus, status) {
      super((status && status.message) || `HTTP ${httpStatus}`);
      this.httpStatus = httpStatus;
      this.code = status && typeof status.code === "number" ? status.code : null;
      this.reason = "";
      this.metadata = {};
      this.violations = [];
      for (const detail of (status && status.details) || []) {
        const type = detail["@type"] || "";
        if (type.endsWith("google.rpc.ErrorInfo")) {
          this.reason = detail.reason || "";
          this.metadata = detail.metadata || {};
        } else if (type.endsWith("google.rpc.BadRequest")) {
          this.violations = detail.fieldViolations || [];
        }
      }
    }
  }

  // A JSON call to the gateway with the page's headers (token, purpose, ...); a refusal becomes an ApiError.
  async function requestJson(method, path, { params, body, signal, headers } = {}) {
    const url = new URL(path, API_BASE);
    for (const [name, value] of params || []) url.searchParams.append(name, value);
    const options = {
      method,
      headers: { ...headers, accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
      signal,
    };
    if (body !== undefined) {
      options.headers["content-type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  // Reads a server-sent event stream (the gateway's watch routes) until it ends or `signal` aborts, handing
  // each event's JSON to `onEvent`; an `error` event becomes an ApiError.
  async function readEventStream(stream, signal, onEvent) {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    while (!signal.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replaceAll("\r\n", "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let kind = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) kind = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (!data.length) continue;
        const payload = JSON.parse(data.join("\n"));
        if (kind === "error") throw new ApiError(0, payload);
        onEvent(payload);
      }
    }
  }

  return Object.freeze({
    API_BASE,
    ApiError,
    CODE,
    TOKEN_KEY,
    decodeClaims,
    element,
    label,
    readEventStream,
    requestJson,
    setMessage,
    show,
    tokenFromFragment,
  });
})();
