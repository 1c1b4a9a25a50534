  /* What the gateway's two page scripts share (formulario.js and acompanhar.js): where the gateway
   * is, one Idempotency-Key per submission, the proof-of-work challenge, the stylesheet and the
   * height an iframe needs. The gateway writes this file into each of them where it says COMUM,
   * inside the script's own function (form.py): each is still one file, and defines no globals.
   */
  var script = document.currentScript;
  var scriptUrl = script ? script.src : location.href;
  var challengeUrl = gatewayUrl("formulario/desafio");
  var solverUrl = gatewayUrl("formulario-desafio.js");
  var stylesheet = gatewayUrl("formulario.css");
  // Answers after which the same submission is sent again with the same Idempotency-Key: the
  // gateway did not settle it (GLPI or the store failing, its own GLPI credentials, rate limits,
  // the first attempt still running). Any other answer is final for that key.
  var RETRY_WITH_SAME_KEY = {401: true, 409: true, 429: true};
  var NETWORK_ERROR = "Não foi possível falar com o servidor de chamados. Verifique a conexão e tente de novo.";

  /* A path of the gateway, resolved against this script's own URL: the gateway's page and a
     snippet on another site both reach the gateway that served the script. */
  function gatewayUrl(path) {
    return new URL(path, scriptUrl).href;
  }

  /* A fresh random key (a UUID where the browser has one; pages served over plain HTTP on
     another host than localhost lack crypto.randomUUID but still have getRandomValues). */
  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  /* One Idempotency-Key per submission: the same data sent again (after a lost answer, an
     error the gateway did not settle, or a second press) reuses it, so the gateway answers with
     the first attempt's result instead of doing it again; edited data gets a new key. */
  function submissionKeys() {
    var pending = null;
    return {
      keyFor: function (payload) {
        if (!pending || pending.payload !== payload) { pending = {payload: payload, key: newKey()}; }
        return pending.key;
      },
      settle: function (status) {
        if (status < 500 && !RETRY_WITH_SAME_KEY[status]) { pending = null; }
      }
    };
  }

  // --- proof of work ------------------------------------------------------------------

  /* A Web Worker from the gateway's own file; on another site's page (the script snippet) a
     worker must come from that page's origin, so a tiny blob worker imports the gateway's file. */
  function newSolver() {
    try {
      if (new URL(solverUrl).origin === location.origin) { return new Worker(solverUrl); }
      var loader = "importScripts(" + JSON.stringify(solverUrl) + ");";
      return new Worker(URL.createObjectURL(new Blob([loader], {type: "text/javascript"})));
    } catch (refused) {
      if (window.console) { console.error("gateway de chamados: não foi possível criar o Web Worker do desafio", refused); }
      return null;
    }
  }

  /* A promise of {desafio, solucao}, or of null when no challenge could be had (the gateway
     then answers desafio_invalido and the person is told to try again). */
  function solveChallenge() {
    return fetch(challengeUrl, {credentials: "omit"}).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    }).then(function (challenge) {
      var worker = newSolver();
      if (!worker) { return null; }
      return new Promise(function (resolve) {
        worker.onmessage = function (event) { worker.terminate(); resolve(event.data); };
        worker.onerror = function () { worker.terminate(); resolve(null); };
        worker.postMessage({desafio: challenge.desafio, dificuldade: challenge.dificuldade});
      });
    }).catch(function () { return null; });
  }

  /* What a post carries with the public form key (null: none, an open gateway or a private set-up):
     the key, and a freshly solved challenge, each good once. `prepare` starts solving one in the
     background (while the person types); `headers` waits for it and starts the next. */
  function postCredentials(formKey) {
    var solving = null;

    function prepare() {
      if (formKey && !solving) { solving = solveChallenge(); }
    }

    function headers() {
      if (!formKey) { return Promise.resolve({}); }
      prepare();
      var solved = solving;
      solving = null;
      return solved.then(function (proof) {
        prepare();
        var sent = {"X-API-Key": formKey};
        if (proof) {
          sent["X-Desafio"] = proof.desafio;
          sent["X-Desafio-Solucao"] = proof.solucao;
        }
        return sent;
      });
    }

    return {prepare: prepare, headers: headers};
  }

  // --- text ---------------------------------------------------------------------------

  function escapeHtml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  /* The gateway's `erro` as a sentence: capital first letter, final full stop. */
  function sentence(text) {
    text = String(text);
    return text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?]$/.test(text) ? "" : ".");
  }

  /* A result region's message (`kind`: "", "sucesso" or "erro"), with a link after it when
     `link` ({text, href}) is given. */
  function showMessage(region, kind, message, link) {
    region.className = "gf-resultado" + (kind ? " gf-resultado-" + kind : "");
    region.textContent = message;
    if (link) {
      var anchor = document.createElement("a");
      anchor.href = link.href;
      anchor.textContent = link.text;
      region.appendChild(document.createTextNode(" "));
      region.appendChild(anchor);
    }
  }

  /* A fetch answer as {status, answer (parsed JSON or null), retryAfter (seconds or null)}. */
  function readAnswer(response) {
    return response.text().then(function (text) {
      var answer = null;
      try { answer = JSON.parse(text); } catch (notJson) { answer = null; }
      var retryAfter = parseInt(response.headers.get("Retry-After") || "", 10);
      return {status: response.status, answer: answer, retryAfter: isNaN(retryAfter) ? null : retryAfter};
    });
  }

  // --- start ------------------------------------------------------------------------

  function hasStylesheet() {
    var links = document.querySelectorAll('link[rel="stylesheet"]');
    for (var i = 0; i < links.length; i++) {
      if (links[i].href === stylesheet) { return true; }
    }
    return false;
  }

  /* Inside an iframe, tell the embedding page the height the page needs (`tipo`: which page):
     now, and on every change (Chromium runs the observer only once an off-screen frame is rendered). */
  function reportHeight(kind) {
    if (window.parent === window) { return; }
    function send() {
      // The body's own height, not the document's: that one never drops below the iframe's.
      var height = Math.ceil(document.body.getBoundingClientRect().height);
      window.parent.postMessage({tipo: kind, altura: height}, "*");
    }
    send();
    if (typeof ResizeObserver !== "undefined") { new ResizeObserver(send).observe(document.body); }
  }

  /* Once the document is parsed: `mount` builds the page's part inside the element the script tag's
     data-alvo attribute names (default `target`), with the gateway's stylesheet. */
  function startIn(target, mount, heightKind) {
    function start() {
      var chosen = (script && script.getAttribute("data-alvo")) || target;
      var container = document.querySelector(chosen);
      if (!container) {
        if (window.console) { console.error("gateway de chamados: nenhum elemento " + chosen + " na página"); }
        return;
      }
      if (!hasStylesheet()) {
        var link = document.createElement("link");
        link.rel = "stylesheet";
        link.href = stylesheet;
        document.head.appendChild(link);
      }
      mount(container);
      reportHeight(heightKind);
    }
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", start);
    } else {
      start();
    }
  }
