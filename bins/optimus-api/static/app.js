// The Optimus page: submit a job, watch it run from its event stream, list recent
// jobs. Plain JavaScript, no build step; it only calls the public API.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const keyInput = $("#api-key");
keyInput.value = localStorage.getItem("optimus-key") || "";
keyInput.addEventListener("change", () => { localStorage.setItem("optimus-key", keyInput.value.trim()); refreshRecent(); });

function headers(extra = {}) {
  const h = { ...extra };
  const key = keyInput.value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: headers(options.headers) });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw { status: res.status, body };
  return body;
}

// ---- the form ----

const languages = new Map();
const source = $("#source");
const gutter = $(".editor .gutter");

// Highlighting: a coloured copy of the code under the transparent textarea.
const KEYWORDS = {
  python: "and as assert async await break class continue def del elif else except False finally for from global if import in is lambda None nonlocal not or pass raise return True try while with yield",
  java: "abstract boolean break byte case catch char class continue default do double else enum extends final finally float for if implements import instanceof int interface long new null package private protected public return short static super switch this throw throws try var void while",
  rust: "as break const continue crate else enum false fn for if impl in let loop match mod move mut pub ref return self Self static struct trait true type unsafe use where while i32 i64 u32 u64 usize f64 String Vec",
  c: "break case char const continue default do double else enum extern float for if int long return short signed sizeof static struct switch typedef unsigned void while include define",
  cpp: "auto bool break case catch char class const continue default delete do double else enum false float for if int long namespace new nullptr private public return std struct switch template this true try typename using void while include define",
  go: "break case chan const continue default defer else fallthrough for func go goto if import interface map package range return select struct switch type var int string bool",
  javascript: "async await break case catch class const continue default delete do else export false for function if import in instanceof let new null return switch this throw true try typeof undefined var void while yield",
  bash: "case do done echo elif else esac fi for function if in local read return then until while",
};
const HASH_COMMENTS = new Set(["python", "bash"]);
const escapeHtml = (t) => t.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" }[c]));

function highlight(code, language) {
  const words = (KEYWORDS[language] || "").split(" ").filter(Boolean).join("|") || "$^";
  const comment = HASH_COMMENTS.has(language) ? "#.*" : "\\/\\/.*|\\/\\*[\\s\\S]*?\\*\\/";
  const re = new RegExp(`(${comment})|("(?:\\\\.|[^"\\\\\\n])*"|'(?:\\\\.|[^'\\\\\\n])*')|\\b(\\d+(?:\\.\\d+)?)\\b|\\b(${words})\\b`, "g");
  let out = "", last = 0;
  for (const m of code.matchAll(re)) {
    out += escapeHtml(code.slice(last, m.index));
    const kind = m[1] ? "c" : m[2] ? "s" : m[3] ? "n" : "k";
    out += `<span class="hl-${kind}">${escapeHtml(m[0])}</span>`;
    last = m.index + m[0].length;
  }
  return out + escapeHtml(code.slice(last)) + "\n";
}

const painted = $(".editor .highlight");
function renumber() {
  const lines = source.value.split("\n").length;
  gutter.textContent = Array.from({ length: lines }, (_, i) => i + 1).join("\n");
  painted.innerHTML = highlight(source.value, $("#language").value);
  syncScroll();
}
function syncScroll() {
  gutter.scrollTop = source.scrollTop;
  painted.scrollTop = source.scrollTop;
  painted.scrollLeft = source.scrollLeft;
}
source.addEventListener("input", renumber);
source.addEventListener("scroll", syncScroll);
source.addEventListener("keydown", (e) => {
  if (e.key === "Tab" && !e.ctrlKey && !e.altKey) {
    e.preventDefault();
    source.setRangeText("    ", source.selectionStart, source.selectionEnd, "end");
    renumber();
  }
});

function addTest(input = "", expected = "") {
  const row = $("#test-row").content.firstElementChild.cloneNode(true);
  $(".input", row).value = input;
  $(".expected", row).value = expected;
  $(".remove", row).addEventListener("click", () => row.remove());
  $("#test-list").append(row);
  return row;
}
$("#add-test").addEventListener("click", () => $(".input", addTest()).focus());

function applyDefaults() {
  const lang = languages.get($("#language").value);
  if (!lang) return;
  $("#timeout").value = lang.defaults.timeout_ms;
  $("#memory").value = lang.defaults.memory_limit_mb;
}
$("#language").addEventListener("change", () => { applyDefaults(); renumber(); });

async function loadLanguages() {
  try {
    const { languages: list } = await api("/languages");
    const select = $("#language");
    select.replaceChildren();
    for (const lang of list) {
      languages.set(lang.name, lang);
      select.append(new Option(`${lang.name} (${lang.version})`, lang.name));
    }
    if (languages.has("python")) select.value = "python";
    applyDefaults();
    renumber();
  } catch (err) {
    showError("form", err);
  }
}

// Which field an error code belongs to, so its message shows next to it.
const FIELD_OF = {
  unknown_language: "language", empty_source: "source_code", source_too_large: "source_code",
  no_tests: "test_cases", too_many_tests: "test_cases", test_too_large: "test_cases", duplicate_test_id: "test_cases",
  limit_out_of_range: "limits",
};

function clearErrors() { document.querySelectorAll(".field-error").forEach((p) => { p.textContent = ""; }); }

function showError(fallback, err) {
  const error = (err && err.body && err.body.error) || { message: String((err && err.message) || err) };
  let field = FIELD_OF[error.code] || fallback;
  if (error.code === "invalid_field" && /test_cases/.test(error.message)) field = "test_cases";
  if (err && (err.status === 401 || err.status === 403)) field = "form";
  const target = document.querySelector(`.field-error[data-field="${field}"]`) || document.querySelector('.field-error[data-field="form"]');
  target.textContent = error.message || `request failed (${err && err.status})`;
}

async function submitJob(e) {
  if (e) e.preventDefault();
  clearErrors();
  const tests = [...document.querySelectorAll("#test-list .test")].map((row) => {
    const test = { input: $(".input", row).value };
    const expected = $(".expected", row).value;
    if (expected !== "") test.expected_output = expected;
    return test;
  });
  const body = {
    language: $("#language").value,
    source_code: source.value,
    test_cases: tests,
    mode: $("#mode").value,
  };
  if ($("#timeout").value) body.timeout_ms = Number($("#timeout").value);
  if ($("#memory").value) body.memory_limit_mb = Number($("#memory").value);
  $("#submit").disabled = true;
  try {
    const { job_id } = await api("/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    location.hash = `#/jobs/${job_id}`;
    refreshRecent();
  } catch (err) {
    showError("form", err);
  } finally {
    $("#submit").disabled = false;
  }
}
$("#job-form").addEventListener("submit", submitJob);
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "Enter" && !$("#submit-view").hidden) submitJob(e);
});

// ---- the job view, filled from the job's event stream ----

let following = null; // the AbortController of the stream being read

function setStatus(status) {
  const badge = $("#job-status");
  badge.textContent = status;
  badge.className = `badge ${status}`;
  $("#cancel").hidden = !(status === "queued" || status === "running");
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.append(td);
  return td;
}

function block(title, text) {
  const d = document.createElement("div");
  const h = document.createElement("strong");
  h.textContent = title;
  const pre = document.createElement("pre");
  pre.textContent = text;
  d.append(h, pre);
  return d;
}

let attempt = 0;
function showTest(test) {
  if (test.attempt > attempt) { attempt = test.attempt; $("#results tbody").replaceChildren(); }
  const tbody = $("#results tbody");
  const row = document.createElement("tr");
  row.dataset.index = test.index;
  const verdict = test.verdict || "none";
  cell(row, String(test.test_id));
  cell(row, verdict.replaceAll("_", " "), `verdict ${verdict}`);
  cell(row, test.execution_time_ms == null ? "" : `${test.execution_time_ms} ms`);
  cell(row, test.cpu_time_ms == null ? "" : `${test.cpu_time_ms} ms`);
  cell(row, test.memory_kb == null ? "" : `${Math.round(test.memory_kb / 1024 * 10) / 10} MB`);
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = "output";
  details.append(summary);
  if (test.message) details.append(block("Message", test.message));
  details.append(block("stdout", test.stdout || ""), block("stderr", test.stderr || ""));
  if (test.expected_output != null) details.append(block("expected", test.expected_output));
  cell(row, "").append(details);
  const existing = tbody.querySelector(`tr[data-index="${test.index}"]`);
  if (existing) existing.replaceWith(row); else tbody.append(row);
}

function onEvent(type, data) {
  switch (type) {
    case "queued": case "requeued": setStatus("queued"); break;
    case "running": setStatus("running"); break;
    case "compiled":
      if (data.compile_output) { $("#compile").hidden = false; $("#compile-output").textContent = data.compile_output; }
      if (!data.ok) $("#compile").open = true;
      break;
    case "test": showTest(data); break;
    case "completed": case "cancelled": case "failed": {
      setStatus(type);
      const s = data.summary;
      $("#job-summary").textContent = s
        ? `${(s.overall_status || "ran").replaceAll("_", " ")}: ${s.passed_tests} of ${s.total_tests} tests passed, score ${s.score} of ${s.max_score}`
        : (data.error || "");
      refreshRecent();
      return true;
    }
  }
  return false;
}

// Reads the stream with fetch (so the API key can go in a header), parses the
// events, and reconnects with Last-Event-ID if it drops before the end.
async function follow(id) {
  if (following) following.abort();
  const control = new AbortController();
  following = control;
  let lastId = null;
  for (let tries = 0; tries < 50 && !control.signal.aborted; tries++) {
    try {
      const extra = lastId ? { "Last-Event-ID": lastId } : {};
      const res = await fetch(`/jobs/${id}/events`, { headers: headers(extra), signal: control.signal });
      if (!res.ok) { showError("job", { status: res.status, body: await res.json().catch(() => ({})) }); return; }
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const chunk = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let type = null, data = "", eid = null;
          for (const line of chunk.split("\n")) {
            if (line.startsWith("event:")) type = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trimStart();
            else if (line.startsWith("id:")) eid = line.slice(3).trim();
          }
          if (!type) continue; // a keep-alive comment
          if (eid) lastId = eid;
          if (onEvent(type, JSON.parse(data))) return;
        }
      }
    } catch (err) {
      if (control.signal.aborted) return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

$("#cancel").addEventListener("click", async () => {
  const id = $("#job-id").textContent;
  try { await api(`/jobs/${id}`, { method: "DELETE" }); } catch (err) { showError("job", err); }
});

function showJob(id) {
  $("#submit-view").hidden = true;
  $("#job-view").hidden = false;
  $("#job-id").textContent = id;
  $("#job-summary").textContent = "";
  $("#compile").hidden = true;
  $("#results tbody").replaceChildren();
  clearErrors();
  attempt = 0;
  setStatus("…");
  follow(id);
}

function showForm() {
  if (following) following.abort();
  $("#job-view").hidden = true;
  $("#submit-view").hidden = false;
}

function route() {
  const m = location.hash.match(/^#\/jobs\/([0-9a-f-]{36})$/);
  if (m) showJob(m[1]); else showForm();
}
window.addEventListener("hashchange", route);

// ---- recent jobs ----

async function refreshRecent() {
  const list = $("#recent-list");
  try {
    const { jobs } = await api("/jobs?limit=20");
    list.replaceChildren(...jobs.map((job) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = `#/jobs/${job.job_id}`;
      a.textContent = job.job_id.slice(0, 8);
      a.dataset.jobId = job.job_id;
      const verdict = job.summary && job.summary.overall_status ? ` · ${job.summary.overall_status.replaceAll("_", " ")}` : "";
      li.append(a, ` ${job.language} · ${job.status}${verdict}`);
      return li;
    }));
  } catch (err) {
    list.replaceChildren();
  }
}
$("#refresh-recent").addEventListener("click", refreshRecent);

// ---- start ----
source.value = "a, b = map(int, input().split())\nprint(a + b)\n";
renumber();
addTest("2 3\n", "5\n");
loadLanguages();
refreshRecent();
route();
