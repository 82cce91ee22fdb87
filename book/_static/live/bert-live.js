/* BERT, Annotated: the book's model, live in the page.
 *
 * Plain JavaScript, no library and no WebAssembly: the same WordPiece tokenizer as chapter 01 and
 * the same forward pass as chapters 02-05 (embeddings, post-LN encoder layers with exact GELU, the
 * masked-LM head with its tied decoder), on weights that the book's build exports from
 * book/models/bert-mini-bilingual (Appendix J: bert_annotated.live.export_browser_model).
 *
 * Cells in chapter 09 write a <div class="bert-live" data-widget="fill-mask|attention" ...> that
 * already holds the outputs computed in Python when the book was built. This script turns it into a
 * text box and a button; the model loads only when the reader presses the button. Where it cannot
 * run (no JavaScript, a page opened from file://, a browser without the features below, a failed
 * download) the built-time outputs stay and one line says why.
 *
 * tools/live_check.py (run by `make book-check`) checks, in headless Chromium, that this tokenizer gives chapter 01's ids and
 * that the top-5 predictions and attention maps equal PyTorch's.
 */
(function () {
  "use strict";

  var SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
  var CJK_RANGES = [[0x4E00, 0x9FFF], [0x3400, 0x4DBF], [0x20000, 0x2A6DF], [0x2A700, 0x2B73F],
                    [0x2B740, 0x2B81F], [0x2B820, 0x2CEAF], [0xF900, 0xFAFF], [0x2F800, 0x2FA1F]];
  // Python's str.split() splits on these (str.isspace); after clean_text only " ", U+2028 and U+2029 remain.
  var PYTHON_WHITESPACE = /[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

  var TEXT = {
    en: {
      load: "Load the model ({size}) and fill in the blanks",
      run: "Fill in the blanks",
      loadAttention: "Load the model ({size}) and show the attention",
      runAttention: "Show the attention",
      loading: "Downloading the model: {done} of {size}…",
      preparing: "Preparing the weights…",
      loaded: "The model runs in your browser (loaded in {seconds} s). Edit the text and press the button.",
      computed: "Computed in your browser in {ms} ms.",
      fileProtocol: "The live model needs the book served over HTTP (e.g. `python -m http.server` in _build/html); below are the outputs computed when the book was built.",
      unsupported: "This browser cannot run the live model ({why}); below are the outputs computed when the book was built.",
      failed: "The model could not be loaded ({why}); below are the outputs computed when the book was built.",
      noMask: "No [MASK] in the text: write [MASK] where the model should fill in a word.",
      tooLong: "The text is {n} tokens long; the model reads at most {max}.",
      empty: "Write a sentence first.",
      mask: "[MASK] #{n}",
      rank: "#{n}",
      sentenceA: "Sentence A",
      sentenceB: "Sentence B (optional)",
      layer: "Layer",
      head: "Head",
      query: "query token (row) →",
      key: "attends to (column)",
      stat: "average attention of this head",
      thisText: "this text",
      chapter: "the chapter's {n} pairs",
      targets: {"[CLS]": "to [CLS]", "[SEP]": "to [SEP]", "previous": "to the previous token", "next": "to the next token"},
      mb: "{n} MB"
    },
    zh: {
      load: "载入模型（{size}）并填空",
      run: "填空",
      loadAttention: "载入模型（{size}）并显示注意力",
      runAttention: "显示注意力",
      loading: "正在下载模型：{done} / {size}……",
      preparing: "正在准备权重……",
      loaded: "模型在你的浏览器里运行（载入用时 {seconds} 秒）。修改文本后按按钮即可。",
      computed: "在你的浏览器里计算，用时 {ms} 毫秒。",
      fileProtocol: "实时模型需要通过 HTTP 访问本书（例如在 _build/html 中运行 `python -m http.server`）；下面是构建本书时算出的输出。",
      unsupported: "这个浏览器无法运行实时模型（{why}）；下面是构建本书时算出的输出。",
      failed: "模型载入失败（{why}）；下面是构建本书时算出的输出。",
      noMask: "文本中没有 [MASK]：请在要模型填词的位置写 [MASK]。",
      tooLong: "文本有 {n} 个词元，模型最多读 {max} 个。",
      empty: "请先输入一个句子。",
      mask: "第 {n} 个 [MASK]",
      rank: "第 {n}",
      sentenceA: "句子 A",
      sentenceB: "句子 B（可选）",
      layer: "层",
      head: "头",
      query: "查询词元（行）→",
      key: "关注的词元（列）",
      stat: "这个头的平均注意力",
      thisText: "这段文本",
      chapter: "本章的 {n} 个句对",
      targets: {"[CLS]": "指向 [CLS]", "[SEP]": "指向 [SEP]", "previous": "指向前一个词元", "next": "指向后一个词元"},
      mb: "{n} MB"
    }
  };

  function format(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) { return String(values[key]); });
  }

  // ------------------------------------------------------------------ tokenizer (chapter 01)
  var RE_ZS = /^\p{Zs}$/u, RE_C = /^\p{C}$/u, RE_P = /^\p{P}$/u, RE_MN = /\p{Mn}/gu;

  function isWhitespace(ch) {
    return ch === " " || ch === "\t" || ch === "\n" || ch === "\r" || RE_ZS.test(ch);
  }
  function isControl(ch) {
    if (ch === "\t" || ch === "\n" || ch === "\r") return false;
    return RE_C.test(ch);
  }
  function isPunctuation(ch) {
    var cp = ch.codePointAt(0);
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
    return RE_P.test(ch);
  }
  function isCjkCharacter(ch) {
    var cp = ch.codePointAt(0);
    for (var i = 0; i < CJK_RANGES.length; i++) if (cp >= CJK_RANGES[i][0] && cp <= CJK_RANGES[i][1]) return true;
    return false;
  }
  function cleanText(text) {
    var kept = [];
    for (var ch of text) {
      if (ch === "\0" || ch === "\ufffd" || isControl(ch)) continue;
      kept.push(isWhitespace(ch) ? " " : ch);
    }
    return kept.join("");
  }
  function spaceOutCjkCharacters(text) {
    var out = [];
    for (var ch of text) out.push(isCjkCharacter(ch) ? " " + ch + " " : ch);
    return out.join("");
  }
  function stripAccents(text) {
    return text.normalize("NFD").replace(RE_MN, "");
  }
  function splitOnPunctuation(word) {
    var pieces = [], current = "";
    for (var ch of word) {
      if (isPunctuation(ch)) {
        if (current) { pieces.push(current); current = ""; }
        pieces.push(ch);
      } else {
        current += ch;
      }
    }
    if (current) pieces.push(current);
    return pieces;
  }

  function Tokenizer(vocabText, doLowerCase) {
    var lines = vocabText.split("\n");
    if (lines.length && lines[lines.length - 1] === "") lines.pop();
    this.idsToTokens = lines.map(function (line) { return line.replace(/\r$/, ""); });
    this.vocab = new Map();
    for (var i = 0; i < this.idsToTokens.length; i++) this.vocab.set(this.idsToTokens[i], i);
    this.doLowerCase = doLowerCase;
    var longestFirst = SPECIAL_TOKENS.slice().sort(function (a, b) { return b.length - a.length; });
    this.neverSplit = new RegExp("(" + longestFirst.map(function (t) { return t.replace(/[[\]]/g, "\\$&"); }).join("|") + ")");
    for (var t = 0; t < SPECIAL_TOKENS.length; t++) {
      if (!this.vocab.has(SPECIAL_TOKENS[t])) throw new Error("vocab.txt lacks " + SPECIAL_TOKENS[t]);
    }
    this.unkId = this.vocab.get("[UNK]");
    this.clsId = this.vocab.get("[CLS]");
    this.sepId = this.vocab.get("[SEP]");
    this.maskId = this.vocab.get("[MASK]");
  }

  Tokenizer.prototype.basicTokenize = function (text) {
    var chunks = text.split(this.neverSplit), tokens = [];
    for (var index = 0; index < chunks.length; index++) {
      if (index % 2 === 1) { tokens.push(chunks[index]); continue; }
      var words = spaceOutCjkCharacters(cleanText(chunks[index])).split(PYTHON_WHITESPACE);
      for (var w = 0; w < words.length; w++) {
        var word = words[w];
        if (!word) continue;
        if (this.doLowerCase) word = stripAccents(word.toLowerCase());
        Array.prototype.push.apply(tokens, splitOnPunctuation(word));
      }
    }
    return tokens;
  };

  Tokenizer.prototype.wordpieces = function (word) {
    var chars = Array.from(word);
    if (chars.length > 100) return ["[UNK]"];
    var pieces = [], start = 0;
    while (start < chars.length) {
      var end = chars.length, piece = null;
      while (end > start) {
        var candidate = (start === 0 ? "" : "##") + chars.slice(start, end).join("");
        if (this.vocab.has(candidate)) { piece = candidate; break; }
        end -= 1;
      }
      if (piece === null) return ["[UNK]"];
      pieces.push(piece);
      start = end;
    }
    return pieces;
  };

  Tokenizer.prototype.tokenize = function (text) {
    var tokens = [], words = this.basicTokenize(text);
    for (var i = 0; i < words.length; i++) {
      if (SPECIAL_TOKENS.indexOf(words[i]) >= 0) tokens.push(words[i]);
      else Array.prototype.push.apply(tokens, this.wordpieces(words[i]));
    }
    return tokens;
  };

  /* [CLS] A [SEP] (B [SEP]): {tokens, inputIds, tokenTypeIds}, as BertTokenizer.encode without max_length. */
  Tokenizer.prototype.encode = function (textA, textB) {
    var tokens = ["[CLS]"].concat(this.tokenize(textA), ["[SEP]"]);
    var types = tokens.map(function () { return 0; });
    if (textB) {
      var b = this.tokenize(textB).concat(["[SEP]"]);
      tokens = tokens.concat(b);
      types = types.concat(b.map(function () { return 1; }));
    }
    var self = this;
    return {tokens: tokens, inputIds: tokens.map(function (t) { return self.vocab.has(t) ? self.vocab.get(t) : self.unkId; }),
            tokenTypeIds: types};
  };

  // ------------------------------------------------------------------ the model (chapters 02-05)
  var HALF_TO_FLOAT = (function () {
    var table = new Float32Array(65536);
    for (var h = 0; h < 65536; h++) {
      var sign = h & 0x8000 ? -1 : 1, exponent = (h >> 10) & 0x1f, fraction = h & 0x3ff;
      if (exponent === 0) table[h] = sign * Math.pow(2, -14) * (fraction / 1024);
      else if (exponent === 31) table[h] = fraction ? NaN : sign * Infinity;
      else table[h] = sign * Math.pow(2, exponent - 15) * (1 + fraction / 1024);
    }
    return table;
  })();

  function decodeTensor(buffer, entry) {
    var count = entry.shape.reduce(function (a, b) { return a * b; }, 1);
    if (entry.dtype === "float16") {
      var halves = new Uint16Array(buffer, entry.offset, count), out = new Float32Array(count);
      for (var i = 0; i < count; i++) out[i] = HALF_TO_FLOAT[halves[i]];
      return out;
    }
    if (entry.dtype === "float32") return new Float32Array(buffer.slice(entry.offset, entry.offset + 4 * count));
    throw new Error("unknown dtype " + entry.dtype);
  }

  // erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): GELU(x) = x * Phi(x), the exact form BERT uses.
  function erf(x) {
    var sign = x < 0 ? -1 : 1;
    x = Math.abs(x);
    var t = 1 / (1 + 0.3275911 * x);
    var y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
    return sign * y;
  }
  function gelu(values) {
    for (var i = 0; i < values.length; i++) values[i] = 0.5 * values[i] * (1 + erf(values[i] / Math.SQRT2));
    return values;
  }

  /* x (rows, in) times W^T (W is PyTorch's (out, in)) plus b -> (rows, out). */
  function linear(x, rows, inSize, weight, bias, outSize) {
    var out = new Float32Array(rows * outSize);
    for (var r = 0; r < rows; r++) {
      var xOffset = r * inSize;
      for (var o = 0; o < outSize; o++) {
        var wOffset = o * inSize, sum = bias ? bias[o] : 0;
        for (var k = 0; k < inSize; k++) sum += x[xOffset + k] * weight[wOffset + k];
        out[r * outSize + o] = sum;
      }
    }
    return out;
  }

  function layerNorm(x, rows, size, gamma, beta, eps) {
    for (var r = 0; r < rows; r++) {
      var offset = r * size, mean = 0, variance = 0, i;
      for (i = 0; i < size; i++) mean += x[offset + i];
      mean /= size;
      for (i = 0; i < size; i++) variance += (x[offset + i] - mean) * (x[offset + i] - mean);
      var scale = 1 / Math.sqrt(variance / size + eps);
      for (i = 0; i < size; i++) x[offset + i] = (x[offset + i] - mean) * scale * gamma[i] + beta[i];
    }
    return x;
  }

  function addInPlace(x, y) {
    for (var i = 0; i < x.length; i++) x[i] += y[i];
    return x;
  }

  function Model(manifest, buffer) {
    this.config = manifest.config;
    this.weights = {};
    for (var i = 0; i < manifest.tensors.length; i++) {
      this.weights[manifest.tensors[i].name] = decodeTensor(buffer, manifest.tensors[i]);
    }
  }

  // book-excerpt-start: Appendix J shows the lines from here to the end marker
  /* The encoder on one sequence: {hidden (seq * H), attentions[layer][head] (seq * seq each)}. */
  Model.prototype.encode = function (inputIds, tokenTypeIds) {
    var c = this.config, w = this.weights, seq = inputIds.length, H = c.hidden_size, eps = c.layer_norm_eps;
    var heads = c.num_attention_heads, d = H / heads, I = c.intermediate_size;
    var x = new Float32Array(seq * H);
    var word = w["bert.embeddings.word_embeddings.weight"], position = w["bert.embeddings.position_embeddings.weight"];
    var type = w["bert.embeddings.token_type_embeddings.weight"];
    for (var s = 0; s < seq; s++) {
      for (var h = 0; h < H; h++) {
        x[s * H + h] = word[inputIds[s] * H + h] + position[s * H + h] + type[tokenTypeIds[s] * H + h];
      }
    }
    layerNorm(x, seq, H, w["bert.embeddings.LayerNorm.weight"], w["bert.embeddings.LayerNorm.bias"], eps);
    var attentions = [];
    for (var layer = 0; layer < c.num_hidden_layers; layer++) {
      var p = "bert.encoder.layer." + layer + ".";
      var q = linear(x, seq, H, w[p + "attention.self.query.weight"], w[p + "attention.self.query.bias"], H);
      var k = linear(x, seq, H, w[p + "attention.self.key.weight"], w[p + "attention.self.key.bias"], H);
      var v = linear(x, seq, H, w[p + "attention.self.value.weight"], w[p + "attention.self.value.bias"], H);
      var context = new Float32Array(seq * H), layerMaps = [], scale = 1 / Math.sqrt(d);
      for (var head = 0; head < heads; head++) {
        var probs = new Float32Array(seq * seq), base = head * d;
        for (var i = 0; i < seq; i++) {
          var max = -Infinity, j, t, sum = 0;
          var scores = new Float64Array(seq);
          for (j = 0; j < seq; j++) {
            var dot = 0;
            for (t = 0; t < d; t++) dot += q[i * H + base + t] * k[j * H + base + t];
            scores[j] = dot * scale;
            if (scores[j] > max) max = scores[j];
          }
          for (j = 0; j < seq; j++) { scores[j] = Math.exp(scores[j] - max); sum += scores[j]; }
          for (j = 0; j < seq; j++) probs[i * seq + j] = scores[j] / sum;
          for (t = 0; t < d; t++) {
            var acc = 0;
            for (j = 0; j < seq; j++) acc += probs[i * seq + j] * v[j * H + base + t];
            context[i * H + base + t] = acc;
          }
        }
        layerMaps.push(probs);
      }
      attentions.push(layerMaps);
      var attended = linear(context, seq, H, w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"], H);
      x = layerNorm(addInPlace(attended, x), seq, H, w[p + "attention.output.LayerNorm.weight"],
                    w[p + "attention.output.LayerNorm.bias"], eps);
      var inner = gelu(linear(x, seq, H, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"], I));
      var ffn = linear(inner, seq, I, w[p + "output.dense.weight"], w[p + "output.dense.bias"], H);
      x = layerNorm(addInPlace(ffn, x), seq, H, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps);
    }
    return {hidden: x, attentions: attentions};
  };

  /* The masked-LM head at one position: the softmax over the vocabulary (Float64Array). */
  Model.prototype.mlmProbabilities = function (hidden, position) {
    var c = this.config, w = this.weights, H = c.hidden_size, V = c.vocab_size;
    var h = linear(hidden.subarray(position * H, (position + 1) * H), 1, H, w["cls.predictions.transform.dense.weight"],
                   w["cls.predictions.transform.dense.bias"], H);
    layerNorm(gelu(h), 1, H, w["cls.predictions.transform.LayerNorm.weight"], w["cls.predictions.transform.LayerNorm.bias"],
              c.layer_norm_eps);
    var logits = linear(h, 1, H, w["bert.embeddings.word_embeddings.weight"], w["cls.predictions.bias"], V);
    var max = -Infinity, sum = 0, i, probabilities = new Float64Array(V);
    for (i = 0; i < V; i++) if (logits[i] > max) max = logits[i];
    for (i = 0; i < V; i++) { probabilities[i] = Math.exp(logits[i] - max); sum += probabilities[i]; }
    for (i = 0; i < V; i++) probabilities[i] /= sum;
    return probabilities;
  };
  // book-excerpt-end

  function topK(probabilities, k) {
    var best = [];
    for (var i = 0; i < probabilities.length; i++) {
      if (best.length < k || probabilities[i] > best[best.length - 1][1]) {
        best.push([i, probabilities[i]]);
        best.sort(function (a, b) { return b[1] - a[1] || a[0] - b[0]; });
        if (best.length > k) best.pop();
      }
    }
    return best;
  }

  /* Chapter 09's fill_mask: for each [MASK], the top_k (token, probability) pairs, most probable first. */
  function fillMask(model, tokenizer, text, topk) {
    var encoded = tokenizer.encode(text);
    checkLength(model, encoded);
    var positions = [];
    encoded.inputIds.forEach(function (id, index) { if (id === tokenizer.maskId) positions.push(index); });
    if (!positions.length) throw new UserError("noMask", {});
    var hidden = model.encode(encoded.inputIds, encoded.tokenTypeIds).hidden;
    return positions.map(function (position) {
      return topK(model.mlmProbabilities(hidden, position), topk || 5).map(function (pair) {
        return {token: tokenizer.idsToTokens[pair[0]], id: pair[0], probability: pair[1]};
      });
    });
  }

  /* Chapter 09's attention_summary for one text: per layer and head, the four averages. */
  function attentionStatistics(attentions, inputIds, tokenizer) {
    var seq = inputIds.length, result = {"[CLS]": [], "[SEP]": [], "previous": [], "next": []};
    attentions.forEach(function (layerMaps) {
      var row = {"[CLS]": [], "[SEP]": [], "previous": [], "next": []};
      layerMaps.forEach(function (probs) {
        var cls = 0, sep = 0, previous = 0, next = 0;
        for (var i = 0; i < seq; i++) {
          for (var j = 0; j < seq; j++) {
            if (inputIds[j] === tokenizer.clsId) cls += probs[i * seq + j];
            if (inputIds[j] === tokenizer.sepId) sep += probs[i * seq + j];
          }
          if (i > 0) previous += probs[i * seq + i - 1];
          if (i + 1 < seq) next += probs[i * seq + i + 1];
        }
        row["[CLS]"].push(cls / seq); row["[SEP]"].push(sep / seq);
        row.previous.push(seq > 1 ? previous / (seq - 1) : 0); row.next.push(seq > 1 ? next / (seq - 1) : 0);
      });
      Object.keys(row).forEach(function (key) { result[key].push(row[key]); });
    });
    return result;
  }

  function UserError(key, values) { this.key = key; this.values = values; }

  function checkLength(model, encoded) {
    var max = model.config.max_position_embeddings;
    if (encoded.inputIds.length > max) throw new UserError("tooLong", {n: encoded.inputIds.length, max: max});
  }

  // ------------------------------------------------------------------ loading (once per page)
  var scriptUrl = document.currentScript ? document.currentScript.src : "";
  var loading = null;

  function assetUrl(name) {
    return new URL(name, scriptUrl || document.baseURI).href;
  }

  function unsupportedReason() {
    if (typeof fetch !== "function" || typeof Float32Array !== "function" || typeof Map !== "function") return "fetch, typed arrays";
    try { new RegExp("\\p{L}", "u"); } catch (error) { return "Unicode property escapes"; }
    if (typeof "".normalize !== "function") return "String.normalize";
    return null;
  }

  async function fetchWithProgress(url, onProgress) {
    var response = await fetch(url);
    if (!response.ok) throw new Error(url.split("/").pop() + ": HTTP " + response.status);
    var total = Number(response.headers.get("Content-Length")) || 0;
    if (!response.body || !response.body.getReader) return response.arrayBuffer();
    var reader = response.body.getReader(), chunks = [], received = 0;
    for (;;) {
      var part = await reader.read();
      if (part.done) break;
      chunks.push(part.value);
      received += part.value.length;
      if (onProgress) onProgress(received, total);
    }
    var bytes = new Uint8Array(received), offset = 0;
    chunks.forEach(function (chunk) { bytes.set(chunk, offset); offset += chunk.length; });
    return bytes.buffer;
  }

  /* Fetch the manifest, the weights and the vocabulary; resolves to {model, tokenizer, manifest, seconds}. */
  function load(onProgress) {
    if (loading) return loading;
    loading = (async function () {
      var started = performance.now();
      var manifestResponse = await fetch(assetUrl("bert-mini-bilingual.json"));
      if (!manifestResponse.ok) throw new Error("bert-mini-bilingual.json: HTTP " + manifestResponse.status);
      var manifest = await manifestResponse.json();
      var vocabResponse = await fetch(assetUrl(manifest.vocab_file));
      if (!vocabResponse.ok) throw new Error(manifest.vocab_file + ": HTTP " + vocabResponse.status);
      var vocabText = await vocabResponse.text();
      var buffer = await fetchWithProgress(assetUrl(manifest.weights_file), function (done, total) {
        if (onProgress) onProgress("loading", done, total || manifest.weights_bytes);
      });
      if (buffer.byteLength !== manifest.weights_bytes) {
        throw new Error(manifest.weights_file + ": " + buffer.byteLength + " bytes, expected " + manifest.weights_bytes);
      }
      if (onProgress) onProgress("preparing");
      await new Promise(function (resolve) { setTimeout(resolve, 0); });  // let the page show "preparing"
      var tokenizer = new Tokenizer(vocabText, manifest.do_lower_case);
      var model = new Model(manifest, buffer);
      if (tokenizer.idsToTokens.length !== model.config.vocab_size) throw new Error("vocab.txt does not fit the model");
      return {model: model, tokenizer: tokenizer, manifest: manifest, seconds: (performance.now() - started) / 1000};
    })();
    loading.catch(function () { loading = null; });  // a failed download may be retried
    return loading;
  }

  // ------------------------------------------------------------------ widgets
  function element(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (key) {
      if (key === "text") node.textContent = attributes[key];
      else node.setAttribute(key, attributes[key]);
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  function megabytes(bytes, words) {
    return format(words.mb, {n: (bytes / 1e6).toFixed(1)});
  }

  function setStatus(root, message, kind) {
    var status = root.querySelector(".bert-live-status");
    status.textContent = message;
    status.setAttribute("data-state", kind);
    root.setAttribute("data-state", kind);
  }

  function userMessage(error, words) {
    if (error instanceof UserError) return format(words[error.key], error.values);
    return format(words.failed, {why: error && error.message ? error.message : String(error)});
  }

  function renderPredictions(container, predictions, words) {
    container.textContent = "";
    var table = element("table", {"class": "bert-live-table"});
    var header = element("tr", {}, [element("th", {text: ""})]);
    for (var r = 0; r < predictions[0].length; r++) header.appendChild(element("th", {text: format(words.rank, {n: r + 1})}));
    table.appendChild(element("thead", {}, [header]));
    var body = element("tbody");
    predictions.forEach(function (candidates, index) {
      var row = element("tr", {"data-mask": String(index)}, [element("th", {text: format(words.mask, {n: index + 1})})]);
      candidates.forEach(function (candidate) {
        var cell = element("td", {"data-token": candidate.token, "data-probability": candidate.probability.toPrecision(9)});
        cell.appendChild(element("span", {"class": "bert-live-token", text: candidate.token}));
        cell.appendChild(element("span", {"class": "bert-live-probability", text: " " + candidate.probability.toFixed(3)}));
        var bar = element("span", {"class": "bert-live-bar"});
        bar.style.width = Math.max(1, Math.round(candidate.probability * 100)) + "%";
        cell.appendChild(bar);
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
    table.appendChild(body);
    container.appendChild(table);
  }

  function drawHeatmap(canvas, tokens, probs, words) {
    var seq = tokens.length, cell = Math.max(14, Math.min(28, Math.floor(420 / seq)));
    var context = canvas.getContext("2d");
    context.font = "12px sans-serif";
    var label = 0;
    tokens.forEach(function (token) { label = Math.max(label, context.measureText(token).width); });
    label = Math.ceil(label) + 8;
    var ratio = window.devicePixelRatio || 1, width = label + seq * cell + 4, height = label + seq * cell + 4;
    canvas.width = width * ratio; canvas.height = height * ratio;
    canvas.style.width = width + "px";  // the height follows the aspect ratio (CSS: height auto)
    context = canvas.getContext("2d");
    context.scale(ratio, ratio);
    context.font = "12px sans-serif";
    context.fillStyle = "#ffffff"; context.fillRect(0, 0, width, height);
    for (var i = 0; i < seq; i++) {
      for (var j = 0; j < seq; j++) {
        var value = probs[i * seq + j];
        var shade = Math.round(255 * (1 - value));
        context.fillStyle = "rgb(" + shade + "," + Math.round(255 - value * 140) + ",255)";
        context.fillRect(label + j * cell, label + i * cell, cell - 1, cell - 1);
      }
    }
    context.fillStyle = "#222222"; context.textBaseline = "middle";
    tokens.forEach(function (token, index) {
      context.textAlign = "right";
      context.fillText(token, label - 4, label + index * cell + cell / 2);
      context.save();
      context.translate(label + index * cell + cell / 2, label - 4);
      context.rotate(-Math.PI / 2);
      context.textAlign = "left";
      context.fillText(token, 0, 0);
      context.restore();
    });
    canvas.setAttribute("aria-label", words.query + " " + words.key);
  }

  function setUpFillMask(root, words) {
    var size = Number(root.getAttribute("data-bytes"));
    var input = element("textarea", {"class": "bert-live-input", rows: "2", "aria-label": "text"});
    input.value = root.getAttribute("data-text");
    var button = element("button", {"class": "bert-live-button", type: "button", text: format(words.load, {size: megabytes(size, words)})});
    var output = element("div", {"class": "bert-live-output"});
    root.querySelector(".bert-live-controls").append(input, button);
    root.querySelector(".bert-live-live").appendChild(output);
    button.addEventListener("click", function () {
      run(root, words, button, words.run, function (loaded) {
        var text = input.value.trim();
        if (!text) throw new UserError("empty", {});
        var started = performance.now();
        var predictions = fillMask(loaded.model, loaded.tokenizer, text, Number(root.getAttribute("data-top-k")) || 5);
        renderPredictions(output, predictions, words);
        return format(words.computed, {ms: Math.round(performance.now() - started)});
      });
    });
  }

  function setUpAttention(root, words) {
    var size = Number(root.getAttribute("data-bytes"));
    var summary = JSON.parse(root.getAttribute("data-summary"));
    var inputA = element("input", {"class": "bert-live-input", type: "text", "aria-label": words.sentenceA, placeholder: words.sentenceA});
    var inputB = element("input", {"class": "bert-live-input", type: "text", "aria-label": words.sentenceB, placeholder: words.sentenceB});
    inputA.value = root.getAttribute("data-text-a");
    inputB.value = root.getAttribute("data-text-b") || "";
    var layerSelect = element("select", {"class": "bert-live-layer", "aria-label": words.layer});
    var headSelect = element("select", {"class": "bert-live-head", "aria-label": words.head});
    summary["[CLS]"].forEach(function (_, layer) { layerSelect.appendChild(element("option", {value: String(layer), text: words.layer + " " + layer})); });
    summary["[CLS]"][0].forEach(function (_, head) { headSelect.appendChild(element("option", {value: String(head), text: words.head + " " + head})); });
    layerSelect.value = root.getAttribute("data-layer") || "0";
    headSelect.value = root.getAttribute("data-head") || "0";
    var button = element("button", {"class": "bert-live-button", type: "button", text: format(words.loadAttention, {size: megabytes(size, words)})});
    root.querySelector(".bert-live-controls").append(inputA, inputB, layerSelect, headSelect, button);
    var canvas = element("canvas", {"class": "bert-live-heatmap", role: "img"});
    var statistics = element("table", {"class": "bert-live-table bert-live-statistics"});
    root.querySelector(".bert-live-live").append(element("div", {"class": "bert-live-pair"}, [canvas, statistics]));
    var last = null;

    function show() {
      if (!last) return;
      var layer = Number(layerSelect.value), head = Number(headSelect.value);
      drawHeatmap(canvas, last.tokens, last.attentions[layer][head], words);
      root.setAttribute("data-layer", String(layer)); root.setAttribute("data-head", String(head));
      statistics.textContent = "";
      statistics.appendChild(element("thead", {}, [element("tr", {}, [element("th", {text: words.stat}),
        element("th", {text: words.thisText}),
        element("th", {text: format(words.chapter, {n: root.getAttribute("data-summary-pairs")})})])]));
      var body = element("tbody");
      Object.keys(words.targets).forEach(function (target) {
        body.appendChild(element("tr", {"data-target": target}, [element("th", {text: words.targets[target]}),
          element("td", {"data-live": last.statistics[target][layer][head].toPrecision(6), text: last.statistics[target][layer][head].toFixed(2)}),
          element("td", {text: summary[target][layer][head].toFixed(2)})]));
      });
      statistics.appendChild(body);
    }
    layerSelect.addEventListener("change", show);
    headSelect.addEventListener("change", show);
    button.addEventListener("click", function () {
      run(root, words, button, words.runAttention, function (loaded) {
        var textA = inputA.value.trim();
        if (!textA) throw new UserError("empty", {});
        var started = performance.now();
        var encoded = loaded.tokenizer.encode(textA, inputB.value.trim());
        checkLength(loaded.model, encoded);
        var attentions = loaded.model.encode(encoded.inputIds, encoded.tokenTypeIds).attentions;
        last = {tokens: encoded.tokens, attentions: attentions,
                statistics: attentionStatistics(attentions, encoded.inputIds, loaded.tokenizer)};
        show();
        return format(words.computed, {ms: Math.round(performance.now() - started)});
      });
    });
  }

  /* Load (first press), then compute; errors become the status line, the built-time outputs stay. */
  function run(root, words, button, runLabel, compute) {
    button.disabled = true;
    load(function (stage, done, total) {
      if (stage === "loading") setStatus(root, format(words.loading, {done: megabytes(done, words), size: megabytes(total, words)}), "loading");
      else setStatus(root, words.preparing, "loading");
    }).then(function (loaded) {
      button.textContent = runLabel;
      var message;
      try {
        message = compute(loaded);
      } catch (error) {
        setStatus(root, userMessage(error, words), error instanceof UserError ? "input-error" : "failed");
        root.setAttribute("data-runs", String(Number(root.getAttribute("data-runs") || 0) + 1));
        return;
      }
      root.querySelector(".bert-live-static").hidden = true;  // the live outputs replace the built ones
      setStatus(root, format(words.loaded, {seconds: loaded.seconds.toFixed(1)}) + " " + message, "live");
      root.setAttribute("data-load-seconds", loaded.seconds.toFixed(3));
      root.setAttribute("data-runs", String(Number(root.getAttribute("data-runs") || 0) + 1));
    }, function (error) {
      setStatus(root, userMessage(error, words), "failed");
    }).then(function () { button.disabled = false; });
  }

  function setUp(root) {
    if (root.hasAttribute("data-live-setup")) return;  // the script included twice sets a widget up once
    root.setAttribute("data-live-setup", "");
    var words = TEXT[root.getAttribute("data-lang")] || TEXT.en;
    if (location.protocol === "file:") { setStatus(root, words.fileProtocol, "unavailable"); return; }
    var why = unsupportedReason();
    if (why) { setStatus(root, format(words.unsupported, {why: why}), "unavailable"); return; }
    root.querySelector(".bert-live-controls").hidden = false;
    if (root.getAttribute("data-widget") === "fill-mask") setUpFillMask(root, words);
    else setUpAttention(root, words);
    setStatus(root, "", "ready");
  }

  if (window.BertLive) return;  // already loaded on this page
  window.BertLive = {Tokenizer: Tokenizer, Model: Model, load: load, fillMask: fillMask,
                     attentionStatistics: attentionStatistics, erf: erf};

  function start() {
    document.querySelectorAll(".bert-live").forEach(function (root) {
      try { setUp(root); } catch (error) { setStatus(root, userMessage(error, TEXT[root.getAttribute("data-lang")] || TEXT.en), "failed"); }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
