// The Glow demo page: talks to the JSON API of glow_tf/tools/demo/server.py. Images are PNG data URIs.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  info: null,
  current: null,  // {image, recon, name}: the image of the first panel (A of the mix)
  second: null,   // {image, recon, name}: B of the mix
  directions: [],
};

// ------------------------------------------------------------------------------------------ errors
function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}
function clearError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}
$("error-close").addEventListener("click", clearError);

// An answer that carries an image says, in `warning`, whether its decode overflowed (a black image would
// otherwise say nothing); the latest answer's sentence is shown, or none.
function noteWarning(data) {
  if (!data || !("warning" in data)) return;
  $("warning-text").textContent = data.warning || "";
  $("warning").hidden = !data.warning;
}

// --------------------------------------------------------------------------------------------- API
async function api(path, body) {
  const options = body === undefined ? {} :
    body instanceof FormData ? { method: "POST", body } :
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new Error(`the demo server did not answer (${err.message}); is it still running?`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    throw new Error(`${path}: HTTP ${response.status} without a JSON answer`);
  }
  if (!response.ok) throw new Error(data && data.error ? data.error : `${path}: HTTP ${response.status}`);
  noteWarning(data);
  return data;
}

// Runs `task` for the latest request only: while one runs, newer calls replace each other and the last
// one runs when it ends, so a dragged slider never queues dozens of model calls.
function latest(task) {
  let running = false, pending = null;
  async function pump() {
    running = true;
    while (pending) {
      const args = pending;
      pending = null;
      try {
        await task(...args);
      } catch (err) {
        showError(err.message);
      }
    }
    running = false;
  }
  return (...args) => {
    pending = args;
    if (!running) pump();
  };
}

// Shows an image and points its download link at it.
function show(id, uri, filename) {
  const img = $(id);
  img.src = uri;
  img.dataset.filled = "1";
  const link = document.querySelector(`a.download[data-for="${id}"]`);
  if (link) {
    link.href = uri;
    link.download = filename;
    link.hidden = false;
  }
}

const stem = (name) => (name || "image").replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_-]+/g, "_");

// ------------------------------------------------------------------------------------------ images
async function useImage(entry) {
  state.current = entry;
  show("input-image", entry.image, `${stem(entry.name)}.png`);
  show("recon-image", entry.recon, `${stem(entry.name)}_reconstruction.png`);
  show("mix-a", entry.recon, `${stem(entry.name)}_reconstruction.png`);
  updateManipulation();
  updateMix();
}

async function fromExample(example) {
  const data = await api("/api/reconstruct", { image: example.image });
  return { image: example.image, recon: data.reconstruction, name: example.label };
}

async function fromUpload(file) {
  const limit = state.info ? state.info.limits.max_upload_bytes : Infinity;
  if (file.size > limit) {
    throw new Error(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MiB; the demo's limit is ` +
                    `${(limit / 2 ** 20).toFixed(0)} MiB`);
  }
  const form = new FormData();
  form.append("image", file, file.name);
  const data = await api("/api/upload", form);
  $("alignment").textContent = `${data.name}: ${data.alignment}.`;
  return { image: data.image, recon: data.reconstruction, name: data.name };
}

function selectThumb(container, button) {
  for (const b of container.querySelectorAll("button")) b.classList.toggle("selected", b === button);
}

function fillThumbs(container, examples, onPick) {
  container.textContent = "";
  examples.forEach((example, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.title = example.label;
    button.dataset.index = String(i);
    const img = document.createElement("img");
    img.src = example.image;
    img.alt = example.label;
    const caption = document.createElement("span");
    caption.textContent = example.label;
    button.append(img, caption);
    button.addEventListener("click", async () => {
      clearError();
      try {
        selectThumb(container, button);
        await onPick(await fromExample(example));
      } catch (err) {
        showError(err.message);
      }
    });
    container.append(button);
  });
}

function onFile(input, container, onPick) {
  input.addEventListener("change", async () => {
    const file = input.files[0];
    if (!file) return;
    clearError();
    try {
      const entry = await fromUpload(file);
      selectThumb(container, null);
      await onPick(entry);
    } catch (err) {
      showError(err.message);
    } finally {
      input.value = "";  // choosing the same file again still fires `change`
    }
  });
}

// -------------------------------------------------------------------------------------- directions
function sliderValues() {
  const alphas = {};
  for (const input of document.querySelectorAll("input.direction")) {
    const value = Number(input.value);
    if (value !== 0) alphas[input.dataset.name] = value;
  }
  return alphas;
}

const updateManipulation = latest(async () => {
  if (!state.current || !state.directions.length) return;
  const data = await api("/api/manipulate", { image: state.current.image, alphas: sliderValues() });
  show("manip-image", data.image, `${stem(state.current.name)}_edited.png`);
});

function buildSliders(names) {
  const max = state.info.limits.alpha_max;
  const box = $("sliders");
  box.textContent = "";
  names.forEach((name, i) => {
    const label = document.createElement("label");
    const text = document.createElement("span");
    text.textContent = name;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: -max, max, step: 0.05, value: 0, className: "direction" });
    input.id = `direction-${i}`;
    input.dataset.name = name;
    const output = document.createElement("output");
    output.textContent = "0.00";
    input.addEventListener("input", () => {
      output.textContent = Number(input.value).toFixed(2);
      updateManipulation();
    });
    label.append(text, input, output);
    box.append(label);
  });
  $("reset-sliders").hidden = false;
}

$("reset-sliders").addEventListener("click", () => {
  for (const input of document.querySelectorAll("input.direction")) {
    input.value = 0;
    input.dispatchEvent(new Event("input"));
  }
});

async function pollDirections() {
  let status;
  try {
    status = await api("/api/directions");
  } catch (err) {
    showError(err.message);
    setTimeout(pollDirections, 2000);
    return;
  }
  const note = $("directions-note");
  if (status.state === "ready") {
    $("directions-progress").hidden = true;
    note.textContent = `One slider per direction: ${status.message}.`;
    state.directions = status.names;
    buildSliders(status.names);
    updateManipulation();
  } else if (status.state === "none" || status.state === "failed") {
    $("directions-progress").hidden = true;
    note.textContent = `No sliders: ${status.message}.`;
  } else {
    $("directions-progress").hidden = false;
    $("progress").max = Math.max(status.total, 1);
    $("progress").value = status.done;
    $("progress-text").textContent = status.total ?
      `${status.message}: ${status.done.toLocaleString("en")} of ${status.total.toLocaleString("en")} images` :
      status.message;
    setTimeout(pollDirections, 500);
  }
}

// --------------------------------------------------------------------------------------------- mix
const updateMix = latest(async () => {
  if (!state.current || !state.second) return;
  const alpha = Number($("mix-slider").value);
  const data = await api("/api/mix", { a: state.current.image, b: state.second.image, alpha });
  show("mix-image", data.image, `mix_${stem(state.current.name)}_${stem(state.second.name)}_${alpha.toFixed(2)}.png`);
});

async function useSecond(entry) {
  state.second = entry;
  show("mix-b", entry.recon, `${stem(entry.name)}_reconstruction.png`);
  updateMix();
}

$("mix-slider").addEventListener("input", () => {
  $("mix-value").textContent = Number($("mix-slider").value).toFixed(2);
  updateMix();
});

// ------------------------------------------------------------------------------------------ random
const drawSamples = latest(async () => {
  const seed = Number($("seed").value);
  const temperature = Number($("temperature").value);
  const data = await api("/api/random", { temperature, seed, n: 8 });
  const box = $("samples");
  box.textContent = "";
  data.images.forEach((uri, i) => {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.id = `sample-${i}`;
    img.src = uri;
    img.alt = `sample ${i}`;
    const link = document.createElement("a");
    Object.assign(link, { className: "download", href: uri, textContent: "download" });
    link.download = `sample_t${temperature.toFixed(2)}_seed${seed}_${i}.png`;
    const caption = document.createElement("figcaption");
    caption.append(link);
    figure.append(img, caption);
    box.append(figure);
  });
});

$("temperature").addEventListener("input", () => {
  $("temperature-value").textContent = Number($("temperature").value).toFixed(2);
  drawSamples();
});
$("draw").addEventListener("click", () => { clearError(); drawSamples(); });
$("seed").addEventListener("change", () => { clearError(); drawSamples(); });
$("new-seed").addEventListener("click", () => {
  clearError();
  $("seed").value = Math.floor(Math.random() * 1e6);
  drawSamples();
});

// -------------------------------------------------------------------------------------------- start
async function start() {
  try {
    state.info = await api("/api/info");
  } catch (err) {
    showError(err.message);
    return;
  }
  const m = state.info.model;
  $("model-info").textContent = `${m.problem} ${m.image_shape.join("\u00d7")}, ${m.n_levels} levels \u00d7 ` +
    `${m.depth} steps, width ${m.width}, ${m.coupling} coupling, ${m.n_bits_x} bits. Checkpoint ${m.checkpoint}.`;
  $("alignment").textContent = `Uploads: ${state.info.alignment}.`;
  const limits = state.info.limits;
  $("temperature").max = limits.temperature_max;
  $("temperature").value = limits.default_temperature;
  $("temperature-value").textContent = limits.default_temperature.toFixed(2);
  $("seed").max = limits.max_seed;
  onFile($("upload"), $("examples"), useImage);
  onFile($("mix-upload"), $("mix-examples"), useSecond);
  pollDirections();
  drawSamples();
  try {
    const data = await api("/api/examples");
    $("examples-note").textContent = data.note;
    fillThumbs($("examples"), data.examples, useImage);
    fillThumbs($("mix-examples"), data.examples, useSecond);
    if (data.examples.length) {
      const first = $("examples").querySelector("button");
      selectThumb($("examples"), first);
      await useImage(await fromExample(data.examples[0]));
    }
    if (data.examples.length > 1) {
      selectThumb($("mix-examples"), $("mix-examples").querySelectorAll("button")[1]);
      await useSecond(await fromExample(data.examples[1]));
    }
  } catch (err) {
    showError(err.message);
  }
  document.body.dataset.ready = "1";
}

start();
