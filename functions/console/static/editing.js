// What every editing screen shares: forms whose controls are named by the document's JSON paths, a JSON
// editor for the parts too rich for a form, saving with the version read (If-Match), and the API's
// refusals shown next to the field they name. Changes without a document (pause, send, delete) send `{}`:
// the admin API takes changes as JSON only (the local gateway refuses others with a 415).
import { api } from './api.js'
import { announce, clearErrors, field, h, showError, table, when } from './ui.js'

//: Keys a GET shows that a PUT ignores (or refuses): never sent back.
const READ_ONLY = ['version', 'origin', 'updated_at', 'backfill', 'state', 'status', 'history']

/** A path segment of an address: ids hold `:` and `.`, so they are encoded both ways. */
export const encode = id => encodeURIComponent(id)
export const decode = text => decodeURIComponent(text)

/**
 * The field an API error names: its `field` when the API gives one, else the path its message starts
 * with (`points: Input should be...`, `filter.all.1.colour: Extra inputs...`), as the admin API writes
 * its messages.
 */
export function errorField (error) {
  if (error.field) return error.field
  const prefix = /^([A-Za-z_][\w]*(?:[.[][\w\]]+)*): /.exec(error.message || '')
  return prefix ? prefix[1].replace(/\[(\d+)\]/g, '.$1') : null
}

/** Show a refusal on the form: next to its field (focus moves there), else above the form. */
export function showRefusal (form, error) {
  const message = error.status === 409
    ? `${error.message}. Someone changed it meanwhile: reload to see their version, then edit again.`
    : error.message
  showError(form, { field: errorField(error), message })
}

/** A text input named by its JSON path. `kind`: text (empty: left out), int, float, datetime. */
export function input (label, name, value, { kind = 'text', hint, required, type, attributes } = {}) {
  const control = h('input', {
    name,
    type: type || (kind === 'int' || kind === 'float' ? 'number' : 'text'),
    step: kind === 'float' ? 'any' : kind === 'int' ? '1' : null,
    inputmode: kind === 'int' ? 'numeric' : kind === 'float' ? 'decimal' : null,
    'data-kind': kind,
    required: required || null,
    autocomplete: 'off',
    ...(attributes || {})
  })
  control.value = value === undefined || value === null ? '' : String(value)
  return field(label, control, hint)
}

/** A multi-line text (template parts, descriptions). */
export function text (label, name, value, { hint, rows = 6 } = {}) {
  const control = h('textarea', { name, 'data-kind': 'text', rows, spellcheck: 'false' })
  control.value = value ?? ''
  return field(label, control, hint)
}

/** A choice among `options` ([value, label] pairs or plain values). */
export function select (label, name, value, options, { hint, kind = 'text', blank } = {}) {
  const control = h(
    'select',
    { name, 'data-kind': kind },
    blank !== undefined ? h('option', { value: '' }, blank) : null,
    options.map(option => {
      const [optionValue, optionLabel] = Array.isArray(option) ? option : [option, option]
      return h('option', { value: optionValue, selected: String(optionValue) === String(value ?? '') }, optionLabel)
    })
  )
  return field(label, control, hint)
}

/** A yes/no, as a checkbox with its label beside it (its errors still next to it). */
export function checkbox (label, name, checked, hint) {
  const control = h('input', { type: 'checkbox', name, 'data-kind': 'bool', checked: Boolean(checked) })
  const wrapped = field(label, control, hint)
  wrapped.classList.add('field-check')
  return wrapped
}

/** The JSON editor: a labelled textarea holding one part of the document (`name`: its path) as JSON. */
export function json (label, name, value, { hint, rows, optional } = {}) {
  const shown = value === undefined || (value === null && optional) ? '' : JSON.stringify(value, null, 2)
  const control = h('textarea', {
    name,
    'data-kind': optional ? 'json?' : 'json',
    class: 'json-editor',
    rows: rows || Math.min(24, Math.max(4, shown.split('\n').length + 1)),
    spellcheck: 'false',
    autocapitalize: 'off'
  })
  control.value = shown
  return field(label, control, hint || 'JSON')
}

/** Read one control: [present, value]; a JSON editor that does not parse throws, naming its field. */
function valueOf (control) {
  const kind = control.dataset.kind
  const raw = control.value
  if (kind === 'bool') return [true, control.checked]
  if (kind === 'json' || kind === 'json?') {
    if (raw.trim() === '') return kind === 'json?' ? [false] : [true, null]
    try {
      return [true, JSON.parse(raw)]
    } catch (error) {
      throw Object.assign(new Error(`${control.name}: not valid JSON (${error.message})`), {
        field: control.name
      })
    }
  }
  if (raw.trim() === '') return [false]
  if (kind === 'int' || kind === 'float') {
    const number = Number(raw)
    return [true, Number.isFinite(number) ? number : raw]
  }
  return [true, raw]
}

function setPath (target, path, value) {
  const parts = path.split('.')
  let here = target
  parts.forEach((part, i) => {
    if (i === parts.length - 1) {
      here[part] = value
      return
    }
    if (here[part] === undefined || here[part] === null || typeof here[part] !== 'object') {
      here[part] = /^\d+$/.test(parts[i + 1]) ? [] : {}
    }
    here = here[part]
  })
}

function deletePath (target, path) {
  const parts = path.split('.')
  let here = target
  for (const part of parts.slice(0, -1)) {
    if (here === null || typeof here !== 'object') return
    here = here[part]
  }
  if (here && typeof here === 'object') delete here[parts[parts.length - 1]]
}

/**
 * The document the form describes: `base` (the version read, so what the form does not show is kept)
 * with every named control's value at its path; an empty optional control leaves its key out (the API's
 * default applies). `replace` names parts rebuilt from the form alone (a list of rows).
 */
export function collect (form, base = {}, replace = []) {
  const document = JSON.parse(JSON.stringify(base))
  for (const key of [...READ_ONLY, ...replace]) delete document[key]
  for (const control of form.querySelectorAll('[name][data-kind]')) {
    if (control.disabled) continue
    const [present, value] = valueOf(control)
    if (present) setPath(document, control.name, value)
    else deletePath(document, control.name)
  }
  return document
}

/**
 * Save a form: PUT (or `method`) `path` with the collected document and the version read; a refusal is
 * shown next to its field. Returns the API's answer, or null when refused.
 */
export async function submit (form, { method = 'PUT', path, body, version }) {
  clearErrors(form)
  let document
  try {
    document = typeof body === 'function' ? body() : body
  } catch (error) {
    showError(form, { field: error.field || null, message: error.message })
    return null
  }
  const button = form.querySelector('button[type="submit"]')
  if (button) button.disabled = true
  try {
    const { data } = await api(method, path, { body: document, version })
    return data
  } catch (error) {
    showRefusal(form, error)
    return null
  } finally {
    if (button) button.disabled = false
  }
}

/** Run an action (pause, resume, send...) from a button: the refusal is shown on `form`, success announced. */
export async function act (form, button, call, done) {
  clearErrors(form)
  button.disabled = true
  try {
    const answer = await call()
    if (done) await done(answer)
    return answer
  } catch (error) {
    showRefusal(form, error)
    return null
  } finally {
    button.disabled = false
  }
}

/** A notice that stays on the screen after a change (and is read out). */
export function notice (main, message) {
  const shown = h('p', { class: 'notice', role: 'status' }, message)
  const heading = main.querySelector('h1')
  heading ? heading.after(shown) : main.prepend(shown)
  announce(message)
  return shown
}

/** The version line: "Version 3, stored 12/3/2026, 10:00:00" (or a shipped default's). */
export function versionLine (document, originLabels = {}) {
  const parts = []
  if (document.version !== undefined) parts.push(`Version ${document.version}`)
  if (document.origin && originLabels[document.origin]) parts.push(originLabels[document.origin])
  if (document.updated_at) parts.push(`saved ${new Date(document.updated_at).toLocaleString()}`)
  return h('p', { class: 'hint version-line' }, parts.join(' · '))
}

/** A state badge: "paused", "enabled", "draft"... with a class per state for colour. */
export function badge (label, state) {
  return h('span', { class: `badge badge-${state}` }, label)
}

/** A list screen: its heading, a "new" link, and a table whose first column links to each document. */
export function listScreen (title, newLink, caption, columns, rows, empty) {
  return [
    h('h1', {}, title),
    newLink ? h('p', { class: 'actions' }, h('a', { class: 'button', href: newLink.href }, newLink.label)) : null,
    table(caption, columns, rows, empty)
  ].filter(Boolean)
}

/** A form that the browser does not validate on its own: the admin API validates, and says where. */
export function form (label, onSubmit, ...children) {
  const element = h(
    'form',
    { class: 'document-form card', novalidate: true, 'aria-label': label },
    ...children
  )
  element.addEventListener('submit', event => {
    event.preventDefault()
    onSubmit(element)
  })
  return element
}

/** A row of buttons. */
export function actions (...buttons) {
  return h('div', { class: 'actions' }, ...buttons)
}

/** Go to another screen (the router renders it). */
export function go (hash) {
  if (window.location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'))
  else window.location.hash = hash
}

let flashed = null

/** Say something on the next screen shown (a save that moves to the document's own address). */
export function flash (message) {
  flashed = message
}

/** Show what was flashed for this screen, once. */
export function showFlash (main) {
  if (flashed) notice(main, flashed)
  flashed = null
}

//: The behaviours a rule, a trigger or a conversion names (shared/tracking/behaviours.py's Behaviour;
//: tests/unit/test_console_documents.py keeps the two the same).
export const BEHAVIOURS = [
  'visit', 'visit_from_ads', 'visit_from_search', 'link_clicked', 'email_opened_mailing',
  'email_opened_personal', 'email_clicked_mailing', 'email_clicked_personal', 'like', 'dislike',
  'comment_added', 'comment_removed', 'product_viewed', 'added_to_cart', 'cart_abandoned', 'purchase',
  'refund', 'order_cancelled', 'call_centre_contact', 'store_visit', 'live_chat', 'app_installed',
  'app_used', 'webinar_attended', 'webinar_question_asked', 'consent_changed', 'identified', 'aliased',
  'grouped', 'custom'
]

/**
 * A consequential button (delete, send): pressing it asks first, in the page (no browser dialog): the
 * question and a confirm button appear after it, focus on the confirm button; "Keep it" takes it back.
 */
export function confirming (label, question, confirmLabel, onConfirm, { danger = false } = {}) {
  const opener = h('button', { type: 'button', class: danger ? 'danger' : 'secondary', 'aria-expanded': 'false' }, label)
  const confirm = h('button', { type: 'button', class: danger ? 'danger' : '' }, confirmLabel)
  const keep = h('button', { type: 'button', class: 'secondary' }, 'Keep it')
  const panel = h('div', { class: 'confirm', role: 'group', 'aria-label': label, hidden: true },
    h('p', {}, question), h('div', { class: 'actions' }, confirm, keep))
  const close = () => {
    panel.hidden = true
    opener.setAttribute('aria-expanded', 'false')
    opener.focus()
  }
  opener.addEventListener('click', () => {
    panel.hidden = false
    opener.setAttribute('aria-expanded', 'true')
    confirm.focus()
  })
  keep.addEventListener('click', close)
  confirm.addEventListener('click', async () => {
    confirm.disabled = true
    try {
      await onConfirm(confirm)
    } finally {
      confirm.disabled = false
    }
  })
  return h('div', { class: 'confirming' }, opener, panel)
}

/** The versions of a document, newest first, folded away. */
export function history (versions, columns) {
  if (!versions || !versions.length) return null
  return h('details', { class: 'history' }, h('summary', {}, `History (${versions.length} ${versions.length === 1 ? 'version' : 'versions'})`),
    table('Every version, newest first', columns, versions))
}

/** The state badge of a document that can be paused (a segment, an automation): "paused" or "on". */
export function pausedState (document) {
  return document.paused ? badge('paused', 'paused') : badge('active', 'on')
}

/**
 * The parts a pausable versioned document's screen shares (segments, automations), for the document
 * `noun` (e.g. "segment") stored under `collection` ("segments": /admin/segments/<id>, #/segments/<id>):
 * - `heading`: the breadcrumb back to the list, the title, and (once stored) its state and version;
 * - `controls`: once stored, pause or resume and delete (asking first), each sent with the version read;
 *   `pausedNote` is added to what a pause says, `afterNote(stored)` to what every change says;
 * - `history`: its versions (name, paused, when saved), folded away.
 */
export function pausableDocument (editor, document, versions, {
  isNew, noun, collection, deleteQuestion, pausedNote = '', afterNote = () => ''
}) {
  const Noun = noun[0].toUpperCase() + noun.slice(1)
  const Collection = collection[0].toUpperCase() + collection.slice(1)
  const home = `#/${collection}`
  let controls = null
  if (!isNew) {
    const path = `/admin/${collection}/${encode(document.id)}`
    const verb = document.paused ? 'resume' : 'pause'
    const toggle = h('button', { type: 'button', class: 'secondary' },
      document.paused ? `Resume ${noun}` : `Pause ${noun}`)
    toggle.addEventListener('click', () => act(editor, toggle, async () => {
      const { data } = await api('POST', `${path}/${verb}`, { body: {}, version: document.version })
      return data
    }, stored => {
      flash(`${Noun} ${stored.id} ${stored.paused ? `paused${pausedNote}` : 'resumed'}.${afterNote(stored)}`)
      go(`${home}/${encode(stored.id)}`)
    }))
    controls = actions(toggle, confirming(`Delete ${noun}`, deleteQuestion,
      'Delete', button => act(editor, button, async () => {
        const { data } = await api('DELETE', path, { body: {}, version: document.version })
        return data
      }, deleted => {
        flash(`${Noun} ${deleted.deleted} deleted.${afterNote(deleted)}`)
        go(home)
      }), { danger: true }))
  }
  return {
    heading: [
      h('p', { class: 'breadcrumb' }, h('a', { href: home }, Collection)),
      h('h1', {}, isNew ? `New ${noun}` : document.name || document.id),
      isNew ? null : h('div', { class: 'doc-meta' }, pausedState(document), versionLine(document))
    ],
    controls,
    history: history(versions, [
      { label: 'Version', value: d => String(d.version) },
      { label: 'Name', value: d => d.name },
      { label: 'Paused', value: d => (d.paused ? 'yes' : 'no') },
      { label: 'Saved', value: d => when(d.updated_at) }
    ])
  }
}
