// Reports: the lifecycle metrics as charts (the funnel, the stages over time, customers, the cohort
// retention heatmap, revenue, issue 15: the net promoter score), and campaign and automation results with
// their uplift.
//
// Each report's period and range live in the address (#/reports/funnel?period=week&from=2026-09-01&to=
// 2026-11-30), so a report can be bookmarked or shared; without them the admin API's defaults apply (up
// to today), and the controls show the range it answered for. Every chart has its figures in a table.
import { api } from './api.js'
import { h, field, table, chart, showError, clearErrors, announce } from './ui.js'
import { cohortHeatmap } from './heatmap.js'
import { campaignList, resultsView } from './campaign-results.js'
import { colour, count, money, orDash, share } from './report-format.js'
import { npsReport } from './nps-report.js'

//: The metric reports, in the order the reports' navigation lists them.
const SECTIONS = [
  {
    id: 'funnel',
    title: 'Funnel',
    about: 'How many contacts entered each stage, and how many of them have since moved on to a later one.',
    render: funnelReport
  },
  {
    id: 'stages',
    title: 'Stages over time',
    about: 'How many contacts are in each stage at the end of each period, and how many entered and left it.',
    render: stagesReport
  },
  {
    id: 'customers',
    title: 'Customers',
    about: 'New, retained, returning and churned customers per period.',
    render: customersReport
  },
  {
    id: 'cohorts',
    title: 'Cohorts',
    about: 'Customers grouped by the month of their first purchase, and the share of them buying in each later month.',
    monthsOnly: true,
    render: cohortsReport
  },
  {
    id: 'revenue',
    title: 'Revenue',
    about: 'Revenue and orders per period, by the stage customers were in when they bought and by their RFM segment.',
    render: revenueReport
  },
  {
    id: 'nps',
    title: 'Net promoter score',
    about: 'Survey answers per period: the NPS with its 95% interval, the response rate, and the NPS by stage, segment and survey.',
    render: npsReport
  }
]
const CAMPAIGNS = {
  id: 'campaigns',
  title: 'Campaign results',
  about: 'Campaigns and automations with a holdout: each arm’s conversion, and the uplift over those held out.'
}
const BY_ID = Object.fromEntries(SECTIONS.map(s => [s.id, s]))
const PERIODS = [['day', 'Day'], ['week', 'Week'], ['month', 'Month']]

export const nav = [{ href: '#/reports', label: 'Reports' }]
export const routes = [
  { pattern: /^\/reports\/?(?:\?.*)?$/, title: 'Reports', render: overview },
  {
    pattern: /^\/reports\/(funnel|stages|customers|cohorts|revenue|nps)(?:\?(.*))?$/,
    title: 'Reports',
    render: (main, match) => metricScreen(main, BY_ID[match[1]], match[2] || '')
  },
  { pattern: /^\/reports\/campaigns\/?(?:\?.*)?$/, title: 'Campaign results', render: campaignsScreen },
  {
    pattern: /^\/reports\/(campaigns|automations)\/([^/?]+)(?:\?.*)?$/,
    title: 'Campaign results',
    render: (main, match) => resultsScreen(main, match[1], decodeURIComponent(match[2]))
  }
]

// --- the address -------------------------------------------------------------------------------------

/** The period and range an address's query names ({ period, from, to }; absent ones left out). */
export function rangeOf (search, section) {
  const params = new URLSearchParams(search)
  const range = {}
  for (const name of section?.monthsOnly ? ['from', 'to'] : ['period', 'from', 'to']) {
    if (params.get(name)) range[name] = params.get(name)
  }
  return range
}

/** The address of a report with that range: #/reports/funnel?period=week&from=... */
export function addressOf (sectionId, range) {
  const section = BY_ID[sectionId]
  const params = new URLSearchParams()
  for (const name of ['period', 'from', 'to']) {
    if (range[name] && !(name === 'period' && section?.monthsOnly)) params.set(name, range[name])
  }
  const query = params.toString()
  return `#/reports/${sectionId}${query ? `?${query}` : ''}`
}

// --- the screens ------------------------------------------------------------------------------------

function sectionNav (current, range) {
  const items = [...SECTIONS, CAMPAIGNS].map(s =>
    h('li', {}, h('a', {
      href: s === CAMPAIGNS ? '#/reports/campaigns' : addressOf(s.id, range),
      'aria-current': s.id === current ? 'page' : null
    }, s.title))
  )
  return h('nav', { class: 'report-nav', 'aria-label': 'Reports' }, h('ul', {}, items))
}

function destroyCharts (container) {
  for (const canvas of container.querySelectorAll('canvas')) window.Chart?.getChart(canvas)?.destroy()
}

async function overview (main) {
  destroyCharts(main)
  main.replaceChildren(
    h('div', { class: 'reports' },
      h('h1', {}, 'Reports'),
      sectionNav(null, {}),
      h('ul', { class: 'report-index' },
        [...SECTIONS, CAMPAIGNS].map(s => h('li', { class: 'card' },
          h('h2', {}, h('a', { href: s === CAMPAIGNS ? '#/reports/campaigns' : addressOf(s.id, {}) }, s.title)),
          h('p', {}, s.about)
        ))
      )
    )
  )
}

async function campaignsScreen (main) {
  document.title = 'Campaign results · Reports · Lifecycle'
  destroyCharts(main)
  const body = h('div', { class: 'report-body' }, h('p', { class: 'loading' }, 'Loading…'))
  main.replaceChildren(h('div', { class: 'reports' },
    h('h1', {}, CAMPAIGNS.title), sectionNav('campaigns', {}), h('p', { class: 'hint' }, CAMPAIGNS.about), body))
  try {
    body.replaceChildren(...await campaignList())
  } catch (error) {
    body.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, error.message))
  }
}

async function resultsScreen (main, kind, id) {
  destroyCharts(main)
  const body = h('div', { class: 'report-body' }, h('p', { class: 'loading' }, 'Loading…'))
  main.replaceChildren(h('div', { class: 'reports' }, body))
  try {
    const content = await resultsView(kind, id)
    body.replaceChildren(...content)
    document.title = `${content[0].textContent} · Reports · Lifecycle`
  } catch (error) {
    body.replaceChildren(
      h('h1', {}, 'Campaign results'),
      h('p', { class: 'form-error', role: 'alert' }, error.message),
      h('p', {}, h('a', { href: '#/reports/campaigns' }, 'All campaign results'))
    )
  }
}

/** A metric report: its controls (kept in the address) and what the API answers for them. */
async function metricScreen (main, section, search) {
  document.title = `${section.title} · Reports · Lifecycle`
  destroyCharts(main)
  let range = rangeOf(search, section)
  let loads = 0 // the answer shown is the last range's, whichever answer comes in last
  const body = h('div', { class: 'report-body' })
  let navigation = sectionNav(section.id, range)
  const form = rangeForm(section, range)
  form.addEventListener('submit', async event => {
    event.preventDefault()
    range = formRange(form, section)
    const address = addressOf(section.id, range)
    // pushState, not a hash change: the report reloads in place, and focus stays on the controls
    if (address !== window.location.hash) window.history.pushState(null, '', address)
    const links = sectionNav(section.id, range)
    navigation.replaceWith(links)
    navigation = links
    const data = await load()
    if (data) announce(`${section.title}, ${describe(data)}: shown.`)
  })
  main.replaceChildren(h('div', { class: 'reports' },
    h('h1', {}, section.title), navigation, h('p', { class: 'hint' }, section.about), form, body))
  await load()

  async function load () {
    const mine = ++loads
    destroyCharts(body)
    clearErrors(form)
    body.replaceChildren(h('p', { class: 'loading' }, 'Loading…'))
    body.setAttribute('aria-busy', 'true')
    try {
      const { data } = await api('GET', `/admin/metrics/${section.id}`, { query: range })
      if (mine !== loads) return null // a newer range was asked for meanwhile: its answer wins
      fillForm(form, data)
      body.replaceChildren(h('p', { class: 'report-range' }, describe(data)), ...section.render(data))
      return data
    } catch (error) {
      if (mine !== loads) return null
      body.replaceChildren()
      if (error.status === 400) showError(form, namedField(error))
      else body.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, error.message))
      return null
    } finally {
      if (mine === loads) body.removeAttribute('aria-busy')
    }
  }
}

/** The API names a bad parameter at the start of its message ("from: ... is after to"). */
function namedField (error) {
  if (error.field) return error
  const name = (error.message || '').split(':')[0]
  return ['period', 'from', 'to'].includes(name) ? { message: error.message, field: name } : error
}

function describe (data) {
  const by = { day: 'by day', week: 'by week', month: 'by month' }[data.period] || ''
  return `${data.from} to ${data.to}, ${by}`
}

function rangeForm (section, range) {
  const controls = []
  if (section.monthsOnly) {
    controls.push(h('p', { class: 'hint range-note' }, 'Cohorts are by month: the range covers whole months.'))
  } else {
    controls.push(field('Period', h('select', { name: 'period' },
      PERIODS.map(([value, label]) => h('option', { value, selected: (range.period || 'day') === value }, label))
    )))
  }
  controls.push(
    field('From', h('input', { type: 'date', name: 'from', value: range.from || '' })),
    field('To', h('input', { type: 'date', name: 'to', value: range.to || '' }))
  )
  return h('form', { class: 'range-form', 'aria-label': `${section.title}: period and range`, novalidate: true },
    h('div', { class: 'range-fields' }, controls),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Show'))
  )
}

function formRange (form, section) {
  const range = {}
  for (const name of section.monthsOnly ? ['from', 'to'] : ['period', 'from', 'to']) {
    const value = form.elements[name].value
    if (value) range[name] = value
  }
  return range
}

/** Show the range the API answered for (its defaults, when the address named none). */
function fillForm (form, data) {
  if (form.elements.period) form.elements.period.value = data.period
  form.elements.from.value = data.from
  form.elements.to.value = data.to
}

// --- the reports --------------------------------------------------------------------------------------

const sum = values => values.reduce((total, n) => total + (n || 0), 0)

/** A table folded away under a summary line: a report's period-by-period detail. */
function foldedTable (summary, caption, columns, rows, empty) {
  return h('details', { class: 'report-detail' }, h('summary', {}, summary), table(caption, columns, rows, empty))
}

function funnelReport (data) {
  const totals = data.stages.map(stage => {
    const each = data.periods.map(p => p.stages.find(s => s.stage === stage)).filter(Boolean)
    const entered = sum(each.map(s => s.entered))
    const converted = sum(each.map(s => s.converted))
    return {
      stage,
      entered,
      converted,
      rate: entered ? converted / entered : null,
      left: sum(each.map(s => s.left)),
      removed: sum(each.map(s => s.removed))
    }
  })
  const shown = totals.filter(t => t.entered || t.left)
  const detail = data.periods.flatMap(p =>
    p.stages.filter(s => s.entered || s.left).map(s => ({ period: p.period, ...s }))
  )
  if (!shown.length) return [h('p', { class: 'empty' }, 'No stage moves in this range.')]
  return [
    chart(
      'Funnel: contacts entering each stage, and moving on',
      {
        type: 'bar',
        data: {
          labels: shown.map(t => t.stage),
          datasets: [
            { label: 'Entered', data: shown.map(t => t.entered), backgroundColor: colour(0) },
            { label: 'Moved on to a later stage', data: shown.map(t => t.converted), backgroundColor: colour(1) }
          ]
        },
        options: { indexAxis: 'y', scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } }
      },
      'Entered, in the funnel’s order: ' +
        shown.map(t => `${t.stage} ${count(t.entered)} (${share(t.rate)} moved on)`).join(', ') + '.',
      table(
        'Funnel by stage, over the whole range',
        [
          { label: 'Stage', value: t => t.stage },
          { label: 'Entered', value: t => count(t.entered) },
          { label: 'Moved on', value: t => count(t.converted) },
          { label: 'Conversion', value: t => share(t.rate) },
          { label: 'Left', value: t => count(t.left) },
          { label: 'Removed', value: t => count(t.removed) }
        ],
        shown
      )
    ),
    foldedTable(
      'By period: conversion and median days in stage',
      'Funnel by period and stage',
      [
        { label: 'Period', value: r => r.period },
        { label: 'Stage', value: r => r.stage },
        { label: 'Entered', value: r => count(r.entered) },
        { label: 'Moved on', value: r => count(r.converted) },
        { label: 'Conversion', value: r => share(r.conversion_rate) },
        { label: 'Left', value: r => count(r.left) },
        { label: 'Median days in stage', value: r => orDash(r.median_days_in_stage) }
      ],
      detail
    )
  ]
}

function stagesReport (data) {
  const stages = data.stages.filter(stage =>
    data.periods.some(p => p.population[stage] || p.entered[stage] || p.left[stage]))
  if (!stages.length) return [h('p', { class: 'empty' }, 'Nobody is in a stage in this range.')]
  const last = data.periods[data.periods.length - 1]
  const moves = data.periods.flatMap(p =>
    stages.filter(s => p.entered[s] || p.left[s]).map(s => ({
      period: p.period, stage: s, entered: p.entered[s] || 0, left: p.left[s] || 0, removed: p.removed[s] || 0
    }))
  )
  return [
    chart(
      'Contacts in each stage at the end of each period',
      {
        type: 'bar',
        data: {
          labels: data.periods.map(p => p.period),
          datasets: stages.map((stage, n) => ({
            label: stage,
            data: data.periods.map(p => p.population[stage] || 0),
            backgroundColor: colour(n)
          }))
        },
        options: {
          scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } }
        }
      },
      `At the end of ${last.period}: ` + stages.map(s => `${s} ${count(last.population[s] || 0)}`).join(', ') + '.',
      table(
        'Contacts in each stage at the end of each period',
        [{ label: 'Period', value: p => p.period },
          ...stages.map(s => ({ label: s, value: p => count(p.population[s] || 0) }))],
        data.periods
      )
    ),
    foldedTable(
      'Entries and exits by period',
      'Stage entries and exits by period',
      [
        { label: 'Period', value: r => r.period },
        { label: 'Stage', value: r => r.stage },
        { label: 'Entered', value: r => count(r.entered) },
        { label: 'Left', value: r => count(r.left) },
        { label: 'Of them removed', value: r => count(r.removed) }
      ],
      moves,
      'No stage moves in this range.'
    )
  ]
}

function customersReport (data) {
  const series = [['new', 'New'], ['retained', 'Retained'], ['returning', 'Returning']]
  const totals = Object.fromEntries(['new', 'retained', 'returning', 'churned'].map(k =>
    [k, sum(data.periods.map(p => p[k]))]))
  return [
    chart(
      'Customers per period',
      {
        type: 'bar',
        data: {
          labels: data.periods.map(p => p.period),
          datasets: [
            ...series.map(([key, label], n) => ({
              label, data: data.periods.map(p => p[key]), backgroundColor: colour(n), stack: 'active'
            })),
            {
              type: 'line',
              label: 'Churned',
              data: data.periods.map(p => p.churned),
              borderColor: colour(5),
              backgroundColor: colour(5)
            }
          ]
        },
        options: {
          scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } }
        }
      },
      `Over the range: ${count(totals.new)} new, ${count(totals.retained)} retained, ` +
        `${count(totals.returning)} returning; ${count(totals.churned)} churned.`,
      table(
        'Customers per period',
        [
          { label: 'Period', value: p => p.period },
          { label: 'New', value: p => count(p.new) },
          { label: 'Retained', value: p => count(p.retained) },
          { label: 'Returning', value: p => count(p.returning) },
          { label: 'Active', value: p => count(p.active) },
          { label: 'Churned', value: p => count(p.churned) },
          { label: 'Retention', value: p => share(p.retention_rate) }
        ],
        data.periods
      )
    )
  ]
}

function cohortsReport (data) {
  if (!data.cohorts.some(c => c.size)) {
    return [h('p', { class: 'empty' }, 'No first purchases in this range.'), cohortHeatmap(data)]
  }
  return [
    h('p', { class: 'hint' },
      'Each row is the customers whose first purchase was in that month; each cell, the share of them who ' +
      'bought in the month so many months later (month 0: the first purchase itself). Darker is more.'),
    cohortHeatmap(data)
  ]
}

function revenueReport (data) {
  const stages = data.stages.filter(s => data.periods.some(p => p.by_stage[s]))
  const segments = [...new Set(data.periods.flatMap(p => Object.keys(p.by_rfm_segment)))]
  const bySegment = segments.map(segment => ({
    segment,
    revenue: sum(data.periods.map(p => p.by_rfm_segment[segment]?.revenue)),
    orders: sum(data.periods.map(p => p.by_rfm_segment[segment]?.orders))
  }))
  const total = sum(data.periods.map(p => p.revenue))
  const orders = sum(data.periods.map(p => p.orders))
  const content = [
    chart(
      'Revenue per period, by the stage customers were in when they bought',
      {
        type: 'bar',
        data: {
          labels: data.periods.map(p => p.period),
          datasets: stages.map((stage, n) => ({
            label: stage,
            data: data.periods.map(p => p.by_stage[stage]?.revenue || 0),
            backgroundColor: colour(n)
          }))
        },
        options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } }
      },
      `${money(total)} from ${count(orders)} orders over the range` +
        (stages.length ? ': ' + stages.map(s =>
          `${s} ${money(sum(data.periods.map(p => p.by_stage[s]?.revenue)))}`).join(', ') : '') + '.',
      table(
        'Revenue per period and stage',
        [
          { label: 'Period', value: p => p.period },
          { label: 'Orders', value: p => count(p.orders) },
          { label: 'Revenue', value: p => money(p.revenue) },
          ...stages.map(s => ({ label: s, value: p => money(p.by_stage[s]?.revenue) }))
        ],
        data.periods
      )
    )
  ]
  if (bySegment.length) {
    content.push(chart(
      'Revenue by RFM segment',
      {
        type: 'bar',
        data: {
          labels: bySegment.map(s => s.segment),
          datasets: [{ label: 'Revenue', data: bySegment.map(s => s.revenue), backgroundColor: colour(2) }]
        },
        options: { indexAxis: 'y', scales: { x: { beginAtZero: true } } }
      },
      'By RFM segment when they bought (none: not scored yet): ' +
        bySegment.map(s => `${s.segment} ${money(s.revenue)}`).join(', ') + '.',
      table(
        'Revenue by RFM segment, over the whole range',
        [
          { label: 'Segment', value: s => s.segment },
          { label: 'Orders', value: s => count(s.orders) },
          { label: 'Revenue', value: s => money(s.revenue) }
        ],
        bySegment
      )
    ))
  }
  return content
}
