  /* What the gateway's two page scripts share (formulario.js and acompanhar.js): where the gateway
   * is, one Idempotency-Key per submission, the proof-of-work challenge, the attachments field and
   * its upload, the stylesheet and the height an iframe needs. The gateway writes this file into each of them where it says COMUM,
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

  var ATTACHMENTS_FIELD = "anexos";
  var PASTED_NAME = "captura-de-tela-";

  /* Bytes as people read them, rounded down, like the server's messages (attachments._size_text):
     "5 MB", "1,9 KB", "900 bytes". */
  function sizeText(size) {
    var units = [["MB", 1024 * 1024], ["KB", 1024]];
    for (var i = 0; i < units.length; i++) {
      if (size >= units[i][1]) {
        var tenths = Math.floor(size * 10 / units[i][1]);
        return Math.floor(tenths / 10) + (tenths % 10 ? "," + (tenths % 10) : "") + " " + units[i][0];
      }
    }
    return size + " bytes";
  }

  function extensionOf(name) {
    var dot = name.lastIndexOf(".");
    return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
  }

  /* The optional file field: a native file input (keyboard and screen-reader usable as is), the
     list of chosen files with a Remover button each, and a polite region announcing changes. */
  function attachmentsMarkup(prefix, limits) {
    if (!limits) { return ""; }
    var id = prefix + "-anexos";
    var accept = limits.extensions.map(function (extension) { return "." + extension; });
    return '<div class="gf-campo gf-anexos">' +
      '<label for="' + id + '">Anexos (opcional)</label>' +
      '<p class="gf-dica" id="' + id + '-dica">Até ' + limits.maxCount + " arquivo" +
      (limits.maxCount > 1 ? "s" : "") + " de até " + sizeText(limits.maxBytes) +
      (limits.maxCount > 1 ? " cada" : "") + ". Tipos aceitos: " + escapeHtml(accept.join(", ")) + ". " +
      "Para anexar uma captura de tela, copie-a e cole (Ctrl+V) com o cursor em qualquer campo do formulário.</p>" +
      '<input id="' + id + '" type="file" multiple accept="' + escapeHtml(accept.join(",")) + '"' +
      ' aria-describedby="' + id + "-dica " + id + '-erro">' +
      '<p class="gf-erro" id="' + id + '-erro"></p>' +
      '<ul class="gf-arquivos" id="' + id + '-lista" aria-label="Arquivos escolhidos"></ul>' +
      '<p class="gf-so-leitor" id="' + id + '-aviso" role="status" aria-live="polite"></p>' +
      "</div>";
  }

  /* Shown only while a post with files is on its way; its text says the percentage, politely. */
  function progressMarkup(prefix, limits) {
    if (!limits) { return ""; }
    var id = prefix + "-progresso";
    return '<div class="gf-progresso" hidden>' +
      '<span class="gf-progresso-rotulo" id="' + id + '-rotulo">Envio dos anexos</span>' +
      '<progress id="' + id + '" max="100" value="0" aria-labelledby="' + id + '-rotulo"></progress>' +
      '<span class="gf-progresso-texto" aria-live="polite"></span>' +
      "</div>";
  }

  // --- attachments (the form and the follow-up page) ------------------------------------

  var PASTED_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"};

  /* The file field of one form: the chosen files (picked or pasted), checked against the server's
     `limits` as they are added, and the upload progress (`doneText` once every byte is sent).
     Without limits (an untemplated script) the form has no file field and this does nothing. */
  function mountAttachments(form, prefix, limits, doneText) {
    var picker = form.querySelector("#" + prefix + "-anexos");
    if (!picker) {
      var nothing = function () {};
      return {present: false, setError: nothing, focus: nothing, clear: nothing, progress: nothing,
        progressDone: nothing, files: function () { return []; }};
    }
    var list = form.querySelector("#" + prefix + "-anexos-lista");
    var errorSlot = form.querySelector("#" + prefix + "-anexos-erro");
    var notice = form.querySelector("#" + prefix + "-anexos-aviso");
    var progressBox = form.querySelector(".gf-progresso");
    var progressBar = progressBox.querySelector("progress");
    var progressText = progressBox.querySelector(".gf-progresso-texto");
    var accepted = limits.extensions.map(function (extension) { return "." + extension; }).join(", ");
    var chosen = [];  // {file, name, size, lastModified}
    var pasted = 0;
    var announcedStep = -1;

    function entry(file, name) {
      return {file: file, name: name || file.name, size: file.size, lastModified: file.lastModified || 0};
    }

    function setError(message) {
      errorSlot.textContent = message;
      if (message) {
        picker.setAttribute("aria-invalid", "true");
      } else {
        picker.removeAttribute("aria-invalid");
      }
    }

    function announce(message) {
      // Emptied first, so the same message twice in a row is announced twice.
      notice.textContent = "";
      setTimeout(function () { notice.textContent = message; }, 50);
    }

    /* Why the server would refuse this file, judged by what the browser knows: its size and its
       extension (the server also reads its content). A name without extension is left to the server. */
    function refusal(item) {
      var name = "“" + item.name + "”";
      if (!item.size) { return name + " está vazio."; }
      if (item.size > limits.maxBytes) {
        return name + " tem " + sizeText(item.size) + ", mais que o limite de " + sizeText(limits.maxBytes) +
          " por arquivo.";
      }
      var extension = extensionOf(item.name);
      if (extension && limits.extensions.indexOf(extension) < 0) {
        return name + " não é de um tipo aceito (." + extension + "). São aceitos: " + accepted + ".";
      }
      for (var i = 0; i < chosen.length; i++) {
        if (chosen[i].name === item.name && chosen[i].size === item.size && chosen[i].lastModified === item.lastModified) {
          return name + " já está na lista.";
        }
      }
      if (chosen.length >= limits.maxCount) {
        return name + " não foi adicionado: envie no máximo " + limits.maxCount + " arquivo" +
          (limits.maxCount > 1 ? "s" : "") + ".";
      }
      return "";
    }

    function render() {
      list.textContent = "";
      chosen.forEach(function (item, index) {
        var row = document.createElement("li");
        var name = document.createElement("span");
        name.className = "gf-arquivo-nome";
        name.textContent = item.name;
        var size = document.createElement("span");
        size.className = "gf-arquivo-tamanho";
        size.textContent = " (" + sizeText(item.size) + ")";
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "gf-remover";
        remove.textContent = "Remover";
        remove.setAttribute("aria-label", "Remover " + item.name);
        remove.addEventListener("click", function () { removeAt(index); });
        row.appendChild(name);
        row.appendChild(size);
        row.appendChild(remove);
        list.appendChild(row);
      });
      list.hidden = !chosen.length;
    }

    /* Adds the files the server would take; the others are named with the reason, next to the field. */
    function add(items) {
      var added = [];
      var refused = [];
      items.forEach(function (item) {
        var reason = refusal(item);
        if (reason) {
          refused.push(reason);
        } else {
          chosen.push(item);
          added.push("“" + item.name + "”");
        }
      });
      setError(refused.join(" "));
      render();
      var message = added.length ? (added.length > 1 ? "Adicionados: " : "Adicionado: ") + added.join(", ") + "." : "";
      announce((message + " " + refused.join(" ")).trim());
    }

    /* The removed file's button gives the focus to the next one, else the previous, else the picker. */
    function removeAt(index) {
      var removed = chosen.splice(index, 1)[0];
      setError("");
      render();
      var buttons = list.querySelectorAll(".gf-remover");
      (buttons[Math.min(index, buttons.length - 1)] || picker).focus();
      announce("Removido: “" + removed.name + "”.");
    }

    picker.addEventListener("change", function () {
      add(Array.prototype.map.call(picker.files, function (file) { return entry(file); }));
      picker.value = "";  // the list below is what is sent; the same file can be picked again after removing it
    });

    /* A pasted screenshot becomes a file. Text pasted into a field stays text, even when the
       clipboard also holds a picture of it (as spreadsheets put there). */
    form.addEventListener("paste", function (event) {
      var data = event.clipboardData;
      if (!data) { return; }
      var target = event.target;
      var typing = target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type !== "file");
      if (typing && Array.prototype.indexOf.call(data.types || [], "text/plain") >= 0) { return; }
      var files = Array.prototype.slice.call(data.files || []);
      if (!files.length && data.items) {
        Array.prototype.forEach.call(data.items, function (item) {
          var file = item.kind === "file" ? item.getAsFile() : null;
          if (file) { files.push(file); }
        });
      }
      var images = files.filter(function (file) { return /^image\//.test(file.type); });
      if (!images.length) { return; }
      event.preventDefault();
      add(images.map(function (image) {
        pasted += 1;
        var extension = PASTED_EXTENSIONS[image.type] || image.type.slice(6).toLowerCase();
        return entry(image, PASTED_NAME + pasted + "." + extension);
      }));
    });

    function progress(fraction) {
      var percent = Math.round(fraction * 100);
      progressBox.hidden = false;
      progressBar.value = percent;
      progressBar.textContent = percent + "%";
      // Announced in quarters, not on every event.
      var step = percent === 100 ? 100 : Math.floor(percent / 25) * 25;
      if (step !== announcedStep) {
        announcedStep = step;
        progressText.textContent = step === 100 ? doneText : "Enviando anexos: " + step + "%";
      }
    }

    function progressDone() {
      progressBox.hidden = true;
      progressBar.value = 0;
      progressText.textContent = "";
      announcedStep = -1;
    }

    render();
    return {
      present: true,
      setError: setError,
      focus: function () { picker.focus(); },
      files: function () { return chosen.slice(); },
      clear: function () { chosen = []; pasted = 0; setError(""); render(); },
      progress: progress,
      progressDone: progressDone
    };
  }

  /* A multipart post to `url` (fields by their server names, files in anexos), as {status, text}:
     XMLHttpRequest, because fetch does not report upload progress (`attachments.progress`). The
     browser writes the Content-Type with its boundary. */
  function postMultipart(url, headers, fields, files, attachments) {
    var formData = new FormData();
    Object.keys(fields).forEach(function (name) { formData.append(name, fields[name]); });
    files.forEach(function (entry) { formData.append(ATTACHMENTS_FIELD, entry.file, entry.name); });
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      Object.keys(headers).forEach(function (name) { xhr.setRequestHeader(name, headers[name]); });
      xhr.upload.onprogress = function (event) {
        if (event.lengthComputable && event.total) { attachments.progress(event.loaded / event.total); }
      };
      xhr.upload.onload = function () { attachments.progress(1); };
      xhr.onload = function () { resolve({status: xhr.status, text: xhr.responseText}); };
      xhr.onerror = xhr.onabort = xhr.ontimeout = function () { reject(new Error("falha de rede")); };
      attachments.progress(0);
      xhr.send(formData);
    });
  }

  /* The files' part of a submission's Idempotency-Key: name, size and last change of each. */
  function filesFingerprint(files) {
    return files.length ? JSON.stringify(files.map(function (entry) {
      return [entry.name, entry.size, entry.lastModified];
    })) : "";
  }

  // --- text ---------------------------------------------------------------------------

  function escapeHtml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  /* The files of a 201 GLPI did not take, each with the gateway's reason (what was sent stands anyway). */
  function failedAttachments(answer) {
    var failed = (answer && answer.anexos && answer.anexos.falharam) || [];
    if (!failed.length) { return ""; }
    return " Estes arquivos não foram anexados: " + failed.map(function (item) {
      return "“" + item.arquivo + "” (" + item.motivo + ")";
    }).join("; ") + ". Envie-os ao técnico durante o atendimento.";
  }

  /* The files of a 201 queued because GLPI became unavailable after the ticket (or the message). */
  function pendingAttachments(answer) {
    var pending = ((answer && answer.anexos && answer.anexos.pendentes) || []).map(function (item) {
      return item.arquivo;
    });
    if (!pending.length) { return ""; }
    return pending.length > 1 ? " Os anexos " + namesText(pending) + " serão enviados assim que o GLPI voltar." :
      " O anexo " + namesText(pending) + " será enviado assim que o GLPI voltar.";
  }

  /* File names as a sentence lists them, each in quotes: “a”, “b” e “c”. */
  function namesText(names) {
    var quoted = names.map(function (name) { return "“" + name + "”"; });
    return quoted.length > 1 ? quoted.slice(0, -1).join(", ") + " e " + quoted[quoted.length - 1] : quoted.join("");
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
