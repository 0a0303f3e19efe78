// Scoring rules: the list, and one rule's form (points, behaviour, tag, limits, validity, the detailed
// rule's match as JSON); disable and enable ("pause": `enabled: false`), delete a stored one.
import { api } from './api.js'
import {
  BEHAVIOURS, act, actions, badge, checkbox, collect, confirming, decode, encode, flash, form, go, history,
  input, json, listScreen, select, showFlash, submit, versionLine
} from './editing.js'
import { h, loading, when } from './ui.js'

const ORIGINS = { default: 'shipped default', stored: 'stored by an administrator' }

async function list (main) {
  await loading(main, async () => {
    const { data } = await api('GET', '/admin/rules')
    return listScreen('Scoring rules', { href: '#/rules/_new', label: 'New rule' }, 'Scoring rules', [
      { label: 'Rule', value: r => h('a', { href: `#/rules/${encode(r.id)}` }, r.id) },
      { label: 'Behaviour', value: r => r.behaviour },
      { label: 'Points', value: r => String(r.points) },
      { label: 'State', value: r => (r.enabled ? badge('enabled', 'on') : badge('disabled', 'paused')) },
      { label: 'Origin', value: r => ORIGINS[r.origin] || r.origin }
    ], data.rules, 'No rules.')
  })
  showFlash(main)
}

function ruleForm (rule, isNew, onSaved) {
  const element = form(
    isNew ? 'New rule' : `Rule ${rule.id}`,
    async element => {
      const id = isNew ? element.elements.id.value.trim() : rule.id
      const saved = await submit(element, {
        path: `/admin/rules/${encode(id || '-')}`,
        body: () => {
          if (!id) throw Object.assign(new Error('id: give the rule an id'), { field: 'id' })
          return collect(element, rule)
        },
        version: isNew ? 0 : rule.version
      })
      if (saved) onSaved(saved)
    },
    isNew ? input('Rule id', 'id', '', { hint: 'Lower-case letters, digits, ".", "_", ":" and "-".' }) : null,
    input('Description', 'description', rule.description),
    select('Behaviour', 'behaviour', rule.behaviour, BEHAVIOURS, { hint: 'What the contact did.' }),
    input('Points', 'points', rule.points, {
      kind: 'int', hint: 'From -10,000 to 10,000; negative points take points back.'
    }),
    checkbox('Enabled', 'enabled', rule.enabled, 'A disabled rule gives no points until enabled again.'),
    input('Tag', 'tag', rule.tag, { hint: 'Credit this tag’s score too (and add the tag to the contact).' }),
    input('Tag from', 'tag_from', rule.tag_from, { hint: 'Or take the tag from the call, e.g. properties.category.' }),
    input('At most this many times per contact', 'limit.per_contact', rule.limit?.per_contact, { kind: 'int' }),
    checkbox('At most once per day', 'limit.once_per_day', rule.limit?.once_per_day),
    input('Valid from', 'valid_from', rule.valid_from, { hint: 'ISO time with a time zone, e.g. 2026-12-01T00:00:00Z; empty: always.' }),
    input('Valid to', 'valid_to', rule.valid_to, { hint: 'ISO time with a time zone; empty: no end.' }),
    json('Match (a detailed rule)', 'match', rule.match, {
      optional: true,
      hint: 'JSON; empty for a general rule. E.g. {"url": "https://shop.example/pricing*"} or ' +
        '{"event": "Demo Requested", "properties": [{"path": "properties.plan", "op": "eq", "value": "pro"}]}.'
    }),
    actions(h('button', { type: 'submit' }, isNew ? 'Create rule' : 'Save rule'))
  )
  return element
}

async function detail (main, match) {
  const isNew = match[1] === '_new'
  const id = isNew ? null : decode(match[1])
  await loading(main, async () => {
    const { data } = isNew
      ? { data: { rule: { behaviour: 'visit', points: 1, enabled: true, limit: {} }, history: [] } }
      : await api('GET', `/admin/rules/${encode(id)}`)
    const rule = data.rule
    const saved = stored => {
      flash(`Rule ${stored.id} saved: version ${stored.version}.`)
      go(`#/rules/${encode(stored.id)}`)
    }
    const editor = ruleForm(rule, isNew, saved)
    const controls = []
    if (!isNew) {
      const toggle = h('button', { type: 'button', class: 'secondary' }, rule.enabled ? 'Disable rule' : 'Enable rule')
      toggle.addEventListener('click', () => act(editor, toggle, async () => {
        const body = collect(document.createElement('form'), { ...rule, enabled: !rule.enabled })
        const { data } = await api('PUT', `/admin/rules/${encode(rule.id)}`, { body, version: rule.version })
        return data
      }, stored => {
        flash(`Rule ${stored.id} ${stored.enabled ? 'enabled' : 'disabled'}: version ${stored.version}.`)
        go(`#/rules/${encode(stored.id)}`)
      }))
      controls.push(toggle)
      if (rule.origin === 'stored') {
        controls.push(confirming('Delete rule', `Delete rule ${rule.id}? A shipped default with this id applies again.`,
          'Delete', button => act(editor, button, async () => {
            const { data } = await api('DELETE', `/admin/rules/${encode(rule.id)}`, { body: {}, version: rule.version })
            return data
          }, deleted => {
            flash(`Rule ${deleted.deleted} deleted${deleted.default_applies ? ': the shipped default applies again' : ''}.`)
            go(deleted.default_applies ? `#/rules/${encode(rule.id)}` : '#/rules')
          }), { danger: true }))
      }
    }
    return [
      h('p', { class: 'breadcrumb' }, h('a', { href: '#/rules' }, 'Scoring rules')),
      h('h1', {}, isNew ? 'New rule' : `Rule ${rule.id}`),
      isNew
        ? null
        : h('div', { class: 'doc-meta' }, rule.enabled ? badge('enabled', 'on') : badge('disabled', 'paused'),
          versionLine(rule, ORIGINS)),
      controls.length ? actions(...controls) : null,
      editor,
      history(data.history, [
        { label: 'Version', value: r => String(r.version) },
        { label: 'Points', value: r => String(r.points) },
        { label: 'Enabled', value: r => (r.enabled ? 'yes' : 'no') },
        { label: 'Saved', value: r => when(r.updated_at) }
      ])
    ].filter(Boolean)
  })
  showFlash(main)
}

export const nav = [{ href: '#/rules', label: 'Rules' }]
export const routes = [
  { pattern: /^\/rules$/, title: 'Scoring rules', render: list },
  { pattern: /^\/rules\/([^/?]+)$/, title: 'Rule', render: detail }
]
