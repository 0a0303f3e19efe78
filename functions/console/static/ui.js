// Building blocks of the console's screens: elements, labelled fields, errors next to fields, tables and
// charts with a text alternative. No framework: the DOM, as the browser gives it.

/** An element: h('a', { href: '#/' }, 'Home'). Attributes starting with "on" are listeners. */
export function h (tag, attributes = {}, ...children) {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2).toLowerCase(), value)
    } else if (name === 'class') {
      element.className = value
    } else if (value === true) {
      element.setAttribute(name, '')
    } else {
      element.setAttribute(name, String(value))
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue
    element.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return element
}

let fieldIds = 0

/**
 * A labelled input whose errors show next to it: field('Points', h('input', { name: 'points' })).
 * `name` (on the control) is the API's field path, so errors that name it land here.
 */
export function field (label, control, hint) {
  const id = control.id || `field-${++fieldIds}`
  control.id = id
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true })
  const describedBy = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(' ')
  control.setAttribute('aria-describedby', describedBy)
  return h(
    'div',
    { class: 'field', 'data-field': control.getAttribute('name') || '' },
    h('label', { for: id }, label),
    hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null,
    control,
    error
  )
}

/** Clear a form's errors. */
export function clearErrors (form) {
  for (const error of form.querySelectorAll('.field-error')) {
    error.hidden = true
    error.textContent = ''
  }
  for (const control of form.querySelectorAll('[aria-invalid]')) control.removeAttribute('aria-invalid')
  const summary = form.querySelector('.form-error')
  if (summary) summary.remove()
}

/**
 * Show an API error on a form: next to the field it names (the closest field whose name the error's
 * field path starts with), else above the form's buttons. Focus moves to the field.
 */
export function showError (form, error) {
  clearErrors(form)
  const path = error.field || ''
  const fields = [...form.querySelectorAll('.field[data-field]')].filter(
    f => f.dataset.field && (path === f.dataset.field || path.startsWith(f.dataset.field + '.') ||
      path.startsWith(f.dataset.field + '['))
  )
  fields.sort((a, b) => b.dataset.field.length - a.dataset.field.length)
  const target = fields[0]
  if (target) {
    const message = target.querySelector('.field-error')
    message.textContent = error.message
    message.hidden = false
    const control = target.querySelector('input, select, textarea')
    control.setAttribute('aria-invalid', 'true')
    control.focus()
    return
  }
  const summary = h('p', { class: 'form-error', role: 'alert' }, error.message)
  form.prepend(summary)
  summary.setAttribute('tabindex', '-1')
  summary.focus()
}

/** A table with a caption: columns [{ label, value: row => text or node }]. */
export function table (caption, columns, rows, empty = 'Nothing yet.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty)
  return h(
    'div',
    { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption },
    h(
      'table',
      {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, columns.map(c => h('th', { scope: 'col' }, c.label)))),
      h('tbody', {}, rows.map(row => h('tr', {}, columns.map(c => h('td', {}, c.value(row))))))
    )
  )
}

/**
 * A chart (Chart.js, the pinned browser build) with its text alternative: the canvas is labelled by a
 * one-sentence summary, and the figures are in a table beside it, for screen readers and keyboard users.
 */
export function chart (title, config, summary, figures) {
  const canvas = h('canvas', { role: 'img', 'aria-label': `${title}. ${summary}` })
  const figure = h(
    'figure',
    { class: 'chart' },
    h('figcaption', {}, title),
    h('div', { class: 'chart-box' }, canvas),
    h('p', { class: 'chart-summary' }, summary),
    figures ? h('details', {}, h('summary', {}, `${title}: the figures`), figures) : null
  )
  // drawn once the canvas is in the page (Chart.js measures its container)
  queueMicrotask(() => {
    if (window.Chart) {
      canvas._chart = new window.Chart(canvas, {
        ...config,
        options: { responsive: true, maintainAspectRatio: false, animation: false, ...(config.options || {}) }
      })
    }
  })
  return figure
}

/** Say something to screen readers (and show it briefly). */
export function announce (message) {
  const status = document.getElementById('status')
  status.textContent = ''
  status.textContent = message
}

/** A date and time as people read them, in their own time zone. */
export function when (iso) {
  if (!iso) return ''
  const date = new Date(iso)
  return Number.isNaN(date.valueOf()) ? String(iso) : date.toLocaleString()
}

/** A loading message, then what `load` renders, or the error it failed with. */
export async function loading (main, load) {
  main.replaceChildren(h('p', { class: 'loading' }, 'Loading…'))
  try {
    const content = await load()
    main.replaceChildren(...[content].flat())
  } catch (error) {
    main.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, error.message))
  }
}
