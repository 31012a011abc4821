// The page's generator in the visitor's browser: the model's ONNX file under onnxruntime-web (WebAssembly, one
// thread), drawn on a canvas with the server's own pixel conversion and layout, bit for bit.
//
// The server hands out only what the browser cannot compute the same way: a seed's latents (numpy's generator),
// the slerp between two seeds, a model's slider directions, and the model's file (draw/* routes, ui/routes.py).
// Whatever cannot run here (no WebAssembly SIMD, the runtime or the model's file did not load, a model without a
// browser file yet, settings the server refuses) is drawn on the server instead: the panel's custom event
// `server_draw` runs the tab's Python drawing, and one line under the picture says so and why.
//
// Panels (ui/in_browser.py) attach themselves; the tabs' JS-only events call request(action, values), through
// window.mnistGanQueue when they fire before this file has loaded.
(() => {
  'use strict';
  if (window.mnistGan) return;

  const LOADING_GRACE_MS = 8000;  // a slow first visit: the server draws until the runtime is ready
  const MODEL_RECHECK_MS = 4000;  // a model whose browser file is being made: asked for again after this
  const MAX_RETRIES = 30;  // of one picture, while its model's file is being made (2 minutes)
  const KEPT = 64;  // latents and paths kept per page (a 100-digit grid's are 40 kB)
  const ALL_DIGITS = 'all digits';
  const PANEL_OF = {generate: 'grid', explore: 'latent', interpolate: 'strip'};
  // onnxruntime-web's own probe for WebAssembly SIMD (without it, its only build cannot run)
  const SIMD = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 10, 30, 1, 28, 0, 65, 0,
    253, 15, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 253, 186, 1, 26, 11]);

  /** A reason to draw on the server, in a few words for the line under the picture; `when`: a promise after
   *  which the browser may be able to draw it after all (the runtime has loaded, the model's file is made). */
  class Refusal extends Error {
    constructor(message, when = null) {
      super(message);
      this.when = when;
    }
  }

  // --- the package's pixel path (mnist_gan/images.py), bit for bit ------------------------------------------------

  // images.to_uint8: np.round((np.clip(x, -1, 1) + 1) * 127.5) in float32. A float32 + or * computed in doubles and
  // rounded once (Math.fround) is the float32 result; np.round rounds half to even (Math.round does not).
  function toUint8(x) {
    const out = new Uint8Array(x.length);
    for (let i = 0; i < x.length; i++) {
      let v = x[i];
      v = v < -1 ? -1 : (v > 1 ? 1 : v);
      const p = Math.fround(Math.fround(v + 1) * 127.5);
      let r = Math.floor(p);
      const d = p - r;
      if (d > 0.5 || (d === 0.5 && (r & 1) === 1)) r += 1;
      out[i] = r;
    }
    return out;
  }

  // images.make_grid(images, rows, cols, pad, scale): `pad` black pixels between 28x28 digits, then upscaled
  function makeGrid(images, count, rows, cols, pad, scale) {
    const h = 28, w = 28, H = rows * (h + pad) + pad, W = cols * (w + pad) + pad, g = new Uint8Array(H * W);
    for (let i = 0; i < count; i++) {
      const top = pad + Math.floor(i / cols) * (h + pad), left = pad + (i % cols) * (w + pad);
      for (let y = 0; y < h; y++) g.set(images.subarray((i * h + y) * w, (i * h + y + 1) * w), (top + y) * W + left);
    }
    if (scale <= 1) return {data: g, width: W, height: H};
    const SW = W * scale, out = new Uint8Array(H * scale * SW);
    for (let y = 0; y < H; y++) {
      const row = out.subarray(y * scale * SW, (y * scale + 1) * SW);
      for (let x = 0; x < W; x++) row.fill(g[y * W + x], x * scale, (x + 1) * scale);
      for (let k = 1; k < scale; k++) out.copyWithin((y * scale + k) * SW, y * scale * SW, (y * scale + 1) * SW);
    }
    return {data: out, width: SW, height: H * scale};
  }

  // inside/directions.move: the sum in doubles, in the same order, then one rounding to float32
  function move(start, vectors, dim, amounts) {
    const out = Float64Array.from(start);
    for (let d = 0; d < amounts.length; d++) {
      const a = amounts[d];
      if (a) for (let j = 0; j < dim; j++) out[j] += a * vectors[d * dim + j];
    }
    return Float32Array.from(out);
  }

  // --- what the server hands out ------------------------------------------------------------------------------

  const fromBase64 = (text, Type) => new Type(Uint8Array.from(atob(text), c => c.charCodeAt(0)).buffer);

  async function getJSON(path, params) {
    const url = new URL(path + '?' + new URLSearchParams(params), document.baseURI);
    let answer;
    try {
      answer = await fetch(url, {credentials: 'same-origin'});
    } catch (e) {
      throw new Refusal('the server could not be reached from here');
    }
    const body = await answer.json().catch(() => ({}));
    if (!answer.ok) throw new Refusal(body.error || `the server answered ${answer.status}`);
    return body;
  }

  /** A small map of promises, newest kept; a failed one is forgotten, so it is asked for again. */
  function kept(size) {
    const map = new Map();
    return (key, make) => {
      if (map.has(key)) {
        const found = map.get(key);
        map.delete(key);
        map.set(key, found);
        return found;
      }
      const made = make();
      map.set(key, made);
      made.catch(() => map.delete(key));
      while (map.size > size) map.delete(map.keys().next().value);
      return made;
    };
  }
  const latentsKept = kept(KEPT), pathsKept = kept(KEPT), directionsKept = kept(KEPT);

  function latents(model, seed, n, digit, temperature) {
    const params = {model, seed: String(seed), n: String(n), digit: String(digit), temperature: String(temperature)};
    return latentsKept(JSON.stringify(params), () => getJSON('draw/latents', params).then(q => ({
      ...q, z: fromBase64(q.z, Float32Array)})));
  }

  function interpolation(model, seedA, seedB, frames) {
    const params = {model, seed_a: String(seedA), seed_b: String(seedB), frames: String(frames)};
    return pathsKept(JSON.stringify(params), () => getJSON('draw/interpolation', params).then(q => ({
      ...q, z: fromBase64(q.z, Float32Array)})));
  }

  function directions(model, mode) {
    const params = {model, mode: String(mode)};
    return directionsKept(JSON.stringify(params), () => getJSON('draw/directions', params).then(q => ({
      ...q, vectors: fromBase64(q.vectors, Float32Array)})));
  }

  const models = new Map();  // name -> {at, final, promise}: a model's inputs and file, or why it has none
  function modelInfo(name) {
    const known = models.get(name);
    if (known && (known.final || performance.now() - known.at < MODEL_RECHECK_MS)) return known.promise;
    const entry = {at: performance.now(), final: false, promise: getJSON('draw/model', {model: name})};
    entry.promise.then(info => { entry.final = !!info.onnx; }, () => models.delete(name));
    models.set(name, entry);
    return entry.promise;
  }

  // --- the runtime ---------------------------------------------------------------------------------------------

  const runtime = {config: null, state: 'idle', reason: null, loading: null, sessions: new Map(), created: 0,
                   timings: {}};

  function loadScript(src, integrity) {
    return new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = src;
      if (integrity) {
        script.integrity = integrity;
        script.crossOrigin = 'anonymous';
      }
      script.onload = resolve;
      script.onerror = () => reject(new Refusal('the in-browser runtime did not load'));
      document.head.appendChild(script);
    });
  }

  async function checkedFetch(url, integrity) {  // a file that is not npm's is refused (a network error)
    const answer = await fetch(url, {integrity, mode: 'cors', credentials: 'omit'}).catch(() => null);
    if (!answer || !answer.ok) throw new Refusal('the in-browser runtime did not load');
    return answer;
  }

  // ort.wasm.min.js, then the settings its WebAssembly build needs: one thread (a Space's page is not
  // cross-origin isolated, so there is no SharedArrayBuffer) and no worker proxy (a run takes milliseconds).
  // A local copy (this app's own, immutable URLs): ORT fetches the .mjs and .wasm itself from an absolute URL
  // prefix (a relative one fails to resolve the dynamically imported .mjs), and compiles the .wasm as it streams.
  // The CDN: every file is checked against npm's own (Subresource Integrity); ORT cannot check what it fetches
  // itself, so the page fetches the .mjs and .wasm with `integrity` and hands ORT the checked bytes (the .mjs as a
  // blob: URL, the .wasm as wasmBinary).
  function startRuntime() {
    if (runtime.loading) return runtime.loading;
    runtime.state = 'loading';
    const t0 = performance.now();
    runtime.loading = (async () => {
      const config = runtime.config;
      if (!config) throw new Refusal('the in-browser runtime is not configured');
      if (typeof WebAssembly !== 'object' || !WebAssembly.validate(SIMD)) {
        throw new Refusal('this browser has no WebAssembly SIMD');
      }
      const base = new URL(config.base, document.baseURI).href, sri = config.integrity || {};
      await loadScript(base + config.files.js, sri.js);
      if (typeof ort === 'undefined') throw new Refusal('the in-browser runtime did not load');
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.proxy = false;
      if (config.integrity) {
        const [mjs, wasm] = await Promise.all([
          checkedFetch(base + config.files.mjs, sri.mjs).then(r => r.blob()),
          checkedFetch(base + config.files.wasm, sri.wasm).then(r => r.arrayBuffer())]);
        ort.env.wasm.wasmPaths = {mjs: URL.createObjectURL(new Blob([mjs], {type: 'text/javascript'}))};
        ort.env.wasm.wasmBinary = wasm;
      } else {
        ort.env.wasm.wasmPaths = base;
      }
      runtime.timings.script = performance.now() - t0;
    })();
    runtime.loading.catch(e => fail(e));
    return runtime.loading;
  }

  function fail(e) {
    if (runtime.state === 'failed') return;
    runtime.state = 'failed';
    runtime.reason = e instanceof Refusal ? e.message : 'the in-browser runtime did not start';
    console.warn('mnist-gan: drawing on the server:', runtime.reason, e);
  }

  // One session per model file (its URL carries its content's hash), kept for the page's life: switching back
  // to a model costs nothing. The first one also starts the WebAssembly runtime: if it fails, the runtime failed.
  function session(url) {
    if (!runtime.sessions.has(url)) {
      const t0 = performance.now();
      const made = startRuntime().then(() => ort.InferenceSession.create(new URL(url, document.baseURI).href,
                                                                         {executionProviders: ['wasm']}));
      made.then(() => {
        runtime.created += 1;
        runtime.state = 'ready';
        runtime.timings.session = runtime.timings.session || performance.now() - t0;
      }, e => {
        runtime.sessions.delete(url);
        if (runtime.created === 0) fail(e instanceof Refusal ? e : new Refusal('the in-browser runtime did not load'));
      });
      runtime.sessions.set(url, made);
    }
    return runtime.sessions.get(url);
  }

  const after = (ms, value) => new Promise(resolve => setTimeout(() => resolve(value), ms));

  /** The model's info and session, or a Refusal that says why the server draws it. */
  async function browserModel(name) {
    if (runtime.state === 'failed') throw new Refusal(runtime.reason);
    const info = await modelInfo(name);
    if (!info.onnx) {
      throw new Refusal(info.reason || 'this model has no browser file', info.pending ? after(MODEL_RECHECK_MS) : null);
    }
    const made = session(info.onnx.url);
    const late = Symbol('late');
    let got;
    try {
      got = await Promise.race([made, after(LOADING_GRACE_MS, late)]);
    } catch (e) {
      throw runtime.state === 'failed' ? new Refusal(runtime.reason) : new Refusal("this model's file did not load");
    }
    if (got === late) throw new Refusal('the in-browser generator is still loading', made);
    return {info, session: got};
  }

  // One run at a time: the WebAssembly build has one thread, and a run takes milliseconds.
  let running = Promise.resolve();
  function generate(model, z, count, labels) {
    const {info, session: s} = model, dim = info.latent_dim;
    const feeds = {z: new ort.Tensor('float32', z.slice(0, count * dim), [count, dim])};  // a copy: z may be a view
    if (info.conditional) {
      feeds.label = new ort.Tensor('int32', Int32Array.from(labels), [count, 1]);
    } else if (info.latent_code) {  // architectures.generator_inputs: the code is argmax of z's first entries
      const code = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        let best = 0;
        for (let k = 1; k < info.latent_code; k++) if (z[i * dim + k] > z[i * dim + best]) best = k;  // the first max
        code[i] = best;
      }
      feeds.code = new ort.Tensor('int32', code, [count, 1]);
    }
    const result = running.then(async () => {
      const out = await s.run(feeds);
      const data = out.image.data;
      for (const t of Object.values(out)) if (t.dispose) t.dispose();
      return data;
    });
    running = result.catch(() => {});
    return result;
  }

  function digitOf(value) {
    const digit = Number(value);
    if (value === null || value === '' || !Number.isInteger(digit) || digit < 0 || digit > 9) {
      throw new Refusal('choose a digit 0-9');
    }
    return digit;
  }

  // --- the three pictures ------------------------------------------------------------------------------------

  async function drawGrid(panel, [model, seed, n, digit, temperature]) {
    const m = await browserModel(model);
    const q = await latents(model, seed, n, digit, temperature);
    const images = toUint8(await generate(m, q.z, q.count, q.labels));
    panel.paint(makeGrid(images, q.count, q.rows, q.cols, q.pad, q.scale));
    ahead(model, n, digit, temperature);
  }

  async function drawDigit(panel, [model, seed, digit, mode, start, ...amounts]) {
    const m = await browserModel(model);
    const dim = m.info.latent_dim;
    const [basis, origin] = await Promise.all([
      directions(model, mode),
      start ? Promise.resolve(null) : latents(model, seed, 1, m.info.conditional ? digit : ALL_DIGITS, 1)]);
    let z0;
    if (start) {
      if (!Array.isArray(start) || start.length !== dim) throw new Refusal('the latent found elsewhere does not fit');
      z0 = Float32Array.from(start);
    } else {
      z0 = origin.z.subarray(0, dim);
    }
    const values = amounts.map(Number);
    if (values.some(a => !Number.isFinite(a)) || values.slice(basis.count).some(a => a !== 0)) {
      throw new Refusal('the server checks these slider values');
    }
    const z = move(z0, basis.vectors, dim, values.slice(0, basis.count));
    const labels = m.info.conditional ? [digitOf(digit)] : null;
    const images = toUint8(await generate(m, z, 1, labels));
    panel.paint(makeGrid(images, 1, 1, 1, 0, panel.scale));
  }

  async function drawStrip(panel, [model, seedA, seedB, frames, digit]) {
    const m = await browserModel(model);
    const q = await interpolation(model, seedA, seedB, frames);
    const labels = m.info.conditional ? new Array(q.frames).fill(digitOf(digit)) : null;
    const images = toUint8(await generate(m, q.z, q.frames, labels));
    panel.paint(makeGrid(images, q.frames, 1, q.frames, q.pad, q.scale));
    panel.animate(images, q.frames);
  }

  const DRAW = {grid: drawGrid, latent: drawDigit, strip: drawStrip};

  // Resample: the next seed is chosen (and its latents fetched) while the visitor looks at this grid.
  const nextSeeds = new Map();
  const randomSeed = () => crypto.getRandomValues(new Uint32Array(1))[0];
  function ahead(model, n, digit, temperature) {
    const key = JSON.stringify([model, n, digit, temperature]);
    if (nextSeeds.has(key)) return;
    const seed = randomSeed();
    nextSeeds.set(key, seed);
    latents(model, seed, n, digit, temperature).catch(() => {});
  }
  function nextSeed(model, n, digit, temperature) {
    const key = JSON.stringify([model, n, digit, temperature]);
    const seed = nextSeeds.has(key) ? nextSeeds.get(key) : randomSeed();
    nextSeeds.delete(key);
    return seed;
  }

  // mnist_gan.serving.permalink.link: settings at their defaults left out, the model always in
  const DEFAULTS = {seed: 0, n: 64, digit: ALL_DIGITS, temperature: 1};
  function permalink(model, seed, n, digit, temperature) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries({model, seed, n, digit, temperature})) {
      if (key === 'model' || value !== DEFAULTS[key]) query.append(key, String(value));
    }
    return 'png?' + query.toString();
  }

  // --- panels --------------------------------------------------------------------------------------------------

  class Panel {
    constructor(element, props, serverDraw) {
      this.name = props.panel;
      this.scale = props.scale_factor || 1;
      this.root = element.querySelector('.mg-panel');
      this.canvas = element.querySelector('canvas.mg-canvas');
      this.moving = element.querySelector('canvas.mg-moving');
      this.where = element.querySelector('.mg-where');
      this.link = element.querySelector('.mg-link');
      this.serverDraw = serverDraw;
      this.pending = null;
      this.busy = false;
      this.retries = 0;  // of a picture the server drew while the browser could not yet
      this.moved = null;  // the explorer: the settings of the last slider move seen in the page itself
      this.drawn = 0;  // pictures drawn here
      this.done = 0;  // requests answered, here or by asking the server
      this.timer = null;
      this.last = null;  // {mode, ms, reason}
      const save = element.querySelector('a.mg-save');
      if (save) save.addEventListener('click', () => { save.href = this.canvas.toDataURL('image/png'); });
    }

    request(values) {
      this.values = values;  // the newest settings asked for (the tests read them)
      this.pending = {values, t0: performance.now()};
      if (this.name === 'grid') this.showLink(values);
      if (!this.busy) this.pump();
    }

    async pump() {
      this.busy = true;
      try {
        while (this.pending) {
          const job = this.pending;
          this.pending = null;
          await this.run(job);
        }
      } finally {
        this.busy = false;
      }
    }

    async run(job) {
      try {
        await DRAW[this.name](this, job.values);
        this.retries = 0;
        this.shown('browser', null, performance.now() - job.t0);
      } catch (e) {
        if (!(e instanceof Refusal)) console.error('mnist-gan: the in-browser generator failed', e);
        if (!this.pending) {  // else a newer request says for itself where it is drawn
          this.shown('server', e instanceof Refusal ? e.message : 'the in-browser generator failed', null);
          this.serverDraw();
          if (e.when && this.retries < MAX_RETRIES) {  // then the same picture again, here, if nothing newer came
            this.retries += 1;
            const values = job.values;
            e.when.then(() => { if (this.values === values && !this.busy) this.request(values); }, () => {});
          }
        }
      } finally {
        this.done += 1;
      }
    }

    paint(grid) {
      const {canvas} = this;
      if (canvas.width !== grid.width || canvas.height !== grid.height) {
        canvas.width = grid.width;
        canvas.height = grid.height;
      }
      paintGrey(canvas, grid);
    }

    // the interpolation's frames, there and back (images.encode_gif: 80 ms a frame, 4x)
    animate(images, frames) {
      if (!this.moving) return;
      clearInterval(this.timer);
      const order = [...Array(frames).keys()];
      if (frames > 2) for (let i = frames - 2; i > 0; i--) order.push(i);
      const pictures = order.map(i => makeGrid(images.subarray(i * 784, (i + 1) * 784), 1, 1, 1, 0, 4));
      let k = 0;
      this.moving.width = pictures[0].width;
      this.moving.height = pictures[0].height;
      const step = () => { paintGrey(this.moving, pictures[k]); k = (k + 1) % pictures.length; };
      step();
      this.timer = setInterval(step, 80);
    }

    shown(mode, reason, ms) {
      this.last = {mode, reason, ms};
      if (mode === 'server') clearInterval(this.timer);  // its canvas is hidden: the server's GIF plays
      this.root.dataset.drawn = mode;
      this.where.textContent = mode === 'browser' ? 'drawn in your browser' : `drawn on the server: ${reason}`;
      if (mode === 'browser') {
        this.drawn += 1;
        this.root.dispatchEvent(new CustomEvent('mnist-drawn', {bubbles: true, detail: {ms}}));
      }
    }

    showLink([model, seed, n, digit, temperature]) {
      if (!this.link) return;
      const a = document.createElement('a');
      a.href = permalink(model, seed, n, digit, temperature);
      a.target = '_blank';
      a.rel = 'noopener';
      a.textContent = 'link to this grid';
      this.link.replaceChildren(a, ' (a plain PNG: embed it anywhere)');
    }
  }

  function paintGrey(canvas, grid) {  // grey to RGBA, opaque: getImageData reads back exactly what was put
    const pen = canvas.getContext('2d');
    const picture = pen.createImageData(grid.width, grid.height), rgba = picture.data, grey = grid.data;
    for (let i = 0, j = 0; i < grey.length; i++, j += 4) {
      rgba[j] = rgba[j + 1] = rgba[j + 2] = grey[i];
      rgba[j + 3] = 255;
    }
    pen.putImageData(picture, 0, 0);
  }

  const panels = {};

  function attach(element, props, serverDraw) {
    panels[props.panel] = new Panel(element, props, serverDraw);
    if (!runtime.config) runtime.config = props.runtime;
    drain();
  }

  // Requests wait in window.mnistGanQueue until their panel is there (gradio builds a tab's components when it
  // is first shown); the newest for a panel wins. A slider's move that arrives again through gradio's event, with
  // the values it was already drawn with (see below), is not drawn twice.
  function drain() {
    const queue = window.mnistGanQueue || [];
    const waiting = new Map();
    for (const [action, values] of queue.splice(0)) {
      const panel = panels[PANEL_OF[action]];
      if (!panel) waiting.set(action, values);
      else if (!(action === 'explore' && panel.moved === JSON.stringify(values))) panel.request(values);
    }
    queue.push(...waiting.entries());
  }

  // A slider's move reaches the explorer straight from its <input type=range> (gradio renders each slider as one,
  // inside the element of its elem_id, slider-N): gradio's own `input` event comes a frame later (17 ms median,
  // measured), and is then recognised as the same request. The other settings are the last gradio sent.
  document.addEventListener('input', event => {
    const slider = event.target.closest && event.target.type === 'range' && event.target.closest('[id^="slider-"]');
    const panel = panels.latent;
    if (!slider || !panel || !panel.values || !/^slider-\d+$/.test(slider.id)) return;
    const values = panel.values.slice();
    values[5 + Number(slider.id.slice(7))] = Number(event.target.value);  // after model, seed, digit, mode, start
    panel.moved = JSON.stringify(values);
    panel.request(values);
  }, true);

  function request(action, values) {
    (window.mnistGanQueue = window.mnistGanQueue || []).push([action, values]);
    drain();
  }

  window.mnistGan = {attach, drain, request, nextSeed, permalink, panels, runtime,
                     toUint8, makeGrid, move};  // the last three: for the tests, against numpy
  drain();
})();
