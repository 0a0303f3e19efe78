// The cohort retention heatmap: an HTML table whose cells are coloured by their share, so it is its own
// text alternative (each cell says its share and count, and is headed by its cohort and month).
import { h } from './ui.js'
import { count, share } from './report-format.js'

/**
 * The background of a cell holding `fraction` (0..1): from near white to a mid blue. The darkest is kept
 * light enough for the page's dark ink to stay readable on it (contrast above 4.5:1).
 */
export function heat (fraction) {
  const lightness = 97 - 35 * Math.max(0, Math.min(1, fraction))
  return `hsl(214 80% ${lightness.toFixed(1)}%)`
}

/** The cohorts report ({ cohorts: [{ cohort, size, active, retention }] }) as a heatmap table. */
export function cohortHeatmap (report) {
  const cohorts = report.cohorts
  const months = Math.max(1, ...cohorts.map(c => c.active.length))
  const caption = `Retention by cohort: the share of each month's new customers buying in each month since, ${report.from} to ${report.to}`
  const header = h(
    'tr',
    {},
    h('th', { scope: 'col' }, 'Cohort (first purchase)'),
    h('th', { scope: 'col', class: 'number' }, 'Customers'),
    Array.from({ length: months }, (_, k) => h('th', { scope: 'col', class: 'number' }, k === 0 ? 'Month 0' : `Month ${k}`))
  )
  const rows = cohorts.map(c =>
    h(
      'tr',
      { 'data-cohort': c.cohort },
      h('th', { scope: 'row' }, c.cohort),
      h('td', { class: 'number' }, count(c.size)),
      Array.from({ length: months }, (_, k) => cell(c, k))
    )
  )
  return h(
    'div',
    { class: 'table-wrap heatmap-wrap', tabindex: '0', role: 'region', 'aria-label': 'Cohort retention heatmap' },
    h(
      'table',
      { class: 'heatmap' },
      h('caption', {}, caption),
      h('thead', {}, header),
      h('tbody', {}, rows)
    )
  )
}

function cell (cohort, month) {
  if (month >= cohort.active.length) {
    return h('td', { class: 'heat-none', 'data-month': month }, h('span', { class: 'visually-hidden' }, 'not yet'))
  }
  const fraction = cohort.retention[month]
  const label = `${cohort.cohort}, month ${month}: ${count(cohort.active[month])} of ${count(cohort.size)} customers bought (${share(fraction)})`
  const td = h(
    'td',
    { class: 'number heat', 'data-month': month, 'data-retention': fraction, title: label },
    h('span', { class: 'heat-share' }, share(fraction)),
    h('span', { class: 'heat-count' }, count(cohort.active[month]))
  )
  // through the CSSOM: the console's Content-Security-Policy refuses style attributes
  td.style.backgroundColor = heat(fraction)
  return td
}
