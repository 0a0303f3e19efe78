// Automations: the list, and one automation's form (name, re-entry, holdout; trigger, conditions, steps as
// JSON), pause and resume, delete, and its holdout report.
import { api } from './api.js'
import {
  actions, collect, decode, encode, flash, form, go, input, json, listScreen, pausableDocument, pausedState,
  select, showFlash, submit, text
} from './editing.js'
import { h, loading } from './ui.js'

const EXAMPLE = {
  name: '',
  trigger: { type: 'inactivity', days: 90, since: 'visit' },
  conditions: [],
  steps: [{ action: 'email', subject: 'We miss you', text: 'Hello {{ traits.first_name }}' }],
  reentry: 'always',
  holdout_percent: 0
}

function trigger (automation) {
  const t = automation.trigger || {}
  return [t.type, t.behaviour, t.days && `${t.days} days`, t.segment, t.to].filter(Boolean).join(' · ')
}

async function list (main) {
  await loading(main, async () => {
    const { data } = await api('GET', '/admin/automations')
    return listScreen('Automations', { href: '#/automations/_new', label: 'New automation' }, 'Automations', [
      { label: 'Automation', value: a => h('a', { href: `#/automations/${encode(a.id)}` }, a.name || a.id) },
      { label: 'Id', value: a => a.id },
      { label: 'Trigger', value: trigger },
      { label: 'Steps', value: a => String(a.steps.length) },
      { label: 'State', value: pausedState }
    ], data.automations, 'No automations yet.')
  })
  showFlash(main)
}

async function report (automation) {
  if (!(automation.holdout_percent > 0)) return null
  try {
    const { data } = await api('GET', `/admin/automations/${encode(automation.id)}/results`)
    return h('section', { 'aria-labelledby': 'automation-results' },
      h('h2', { id: 'automation-results' }, `Holdout report (${data.holdout_percent}% held out)`),
      h('ul', {}, data.results.summary.map(line => h('li', {}, line))))
  } catch (error) {
    return h('p', { class: 'form-error' }, error.message)
  }
}

async function detail (main, match) {
  const isNew = match[1] === '_new'
  await loading(main, async () => {
    const { data } = isNew
      ? { data: { automation: EXAMPLE, history: [] } }
      : await api('GET', `/admin/automations/${encode(decode(match[1]))}`)
    const automation = data.automation
    const editor = form(
      isNew ? 'New automation' : `Automation ${automation.id}`,
      async element => {
        const id = isNew ? element.elements.id.value.trim() : automation.id
        const saved = await submit(element, {
          path: `/admin/automations/${encode(id || '-')}`,
          body: () => {
            if (!id) throw Object.assign(new Error('id: give the automation an id'), { field: 'id' })
            return collect(element, automation)
          },
          version: isNew ? 0 : automation.version
        })
        if (saved) {
          flash(`Automation ${saved.id} saved: version ${saved.version}.`)
          go(`#/automations/${encode(saved.id)}`)
        }
      },
      isNew ? input('Automation id', 'id', '', { hint: 'Lower-case letters, digits, ".", "_", ":" and "-".' }) : null,
      input('Name', 'name', automation.name),
      text('Description', 'description', automation.description, { rows: 2 }),
      select('Re-entry', 'reentry', automation.reentry, [
        ['always', 'every occurrence'], ['once', 'once per contact, ever'], ['once_per', 'at most once per period']
      ]),
      json('Period', 'period', automation.period, {
        optional: true, hint: 'JSON, with "at most once per period" only: e.g. {"days": 30}.'
      }),
      input('Holdout (%)', 'holdout_percent', automation.holdout_percent, {
        kind: 'float', hint: '0 to 50: this share of contacts is held out, to measure the uplift.'
      }),
      json('Trigger', 'trigger', automation.trigger, {
        hint: 'JSON: what starts it, chosen by "type" (event, inactivity, score, stage, quarter, date, segment...).'
      }),
      json('Conditions', 'conditions', automation.conditions, { hint: 'JSON: a list of tests on the contact; all must hold.' }),
      json('Steps', 'steps', automation.steps, { hint: 'JSON: a list of steps, each chosen by "action"; the last cannot be a wait.' }),
      json('Conversion', 'conversion', automation.conversion, {
        optional: true, hint: 'JSON, with a holdout: e.g. {"behaviour": "purchase", "days": 7}; empty: the default.'
      }),
      actions(h('button', { type: 'submit' }, isNew ? 'Create automation' : 'Save automation'))
    )
    const parts = pausableDocument(editor, automation, data.history, {
      isNew,
      noun: 'automation',
      collection: 'automations',
      deleteQuestion: `Delete automation ${automation.id}? What it has started stops.`
    })
    return [
      ...parts.heading,
      parts.controls,
      isNew ? null : await report(automation),
      editor,
      parts.history
    ].filter(Boolean)
  })
  showFlash(main)
}

export const nav = [{ href: '#/automations', label: 'Automations' }]
export const routes = [
  { pattern: /^\/automations$/, title: 'Automations', render: list },
  { pattern: /^\/automations\/([^/?]+)$/, title: 'Automation', render: detail }
]
