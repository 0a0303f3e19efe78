// The funnel: its stages (as JSON: each with its phase and transitions), where contacts start and where an
// accepted lead goes, and the engagement thresholds. One document per deployment (version 0: the default).
import { api } from './api.js'
import { actions, collect, flash, form, go, input, json, showFlash, submit } from './editing.js'
import { h, loading, table } from './ui.js'

function transitions (stage) {
  return stage.transitions.map(t => `${t.to}${t.reason ? ` (${t.reason})` : ''}`).join(', ') || '—'
}

async function screen (main) {
  await loading(main, async () => {
    const { data } = await api('GET', '/admin/funnel')
    const { funnel, version } = data
    const stageIds = funnel.stages.map(s => s.id)
    const editor = form(
      'The funnel',
      async element => {
        const saved = await submit(element, {
          path: '/admin/funnel',
          body: () => collect(element, funnel),
          version
        })
        if (saved) {
          flash(`Funnel saved: version ${saved.version}.`)
          go('#/funnel')
        }
      },
      input('First stage', 'initial', funnel.initial, {
        hint: `Where a new contact starts: one of ${stageIds.join(', ')}.`
      }),
      input('Stage of an accepted lead', 'accepted', funnel.accepted, {
        hint: 'Where a lead goes when its salesperson accepts it.'
      }),
      input('Sales threshold', 'thresholds.sales', funnel.thresholds.sales, {
        kind: 'float', hint: 'Current global points from which a contact is in the sales (or retention) quarter.'
      }),
      input('Exit threshold', 'thresholds.exit', funnel.thresholds.exit, {
        kind: 'float', hint: 'Below this a contact is in the exit quarter (must be below the sales threshold).'
      }),
      json('Stages', 'stages', funnel.stages, {
        hint: 'JSON: a list of stages, each {"id", "phase", "description", "routes_lead", "transitions": ' +
          '[{"to", "when": {...}, "reason"}]}, checked in order.'
      }),
      actions(h('button', { type: 'submit' }, 'Save funnel'))
    )
    return [
      h('h1', {}, 'Funnel'),
      h('p', { class: 'hint version-line' }, version ? `Version ${version}` : 'The shipped default (never changed)'),
      table('Stages, in order', [
        { label: 'Stage', value: s => s.id },
        { label: 'Phase', value: s => s.phase },
        { label: 'Routes a lead', value: s => (s.routes_lead ? 'yes' : 'no') },
        { label: 'Moves to', value: transitions }
      ], funnel.stages),
      h('h2', {}, 'Edit'),
      editor
    ]
  })
  showFlash(main)
}

export const nav = [{ href: '#/funnel', label: 'Funnel' }]
export const routes = [{ pattern: /^\/funnel$/, title: 'Funnel', render: screen }]
