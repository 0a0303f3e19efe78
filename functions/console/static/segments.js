// Segments: the list, one segment's form (name, description, the filter as JSON), pause and resume, delete,
// its member count and a link to its members (the contacts screen browses them).
import { api } from './api.js'
import {
  act, actions, badge, collect, confirming, decode, encode, flash, form, go, history, input, json,
  listScreen, showFlash, submit, text, versionLine
} from './editing.js'
import { h, loading, when } from './ui.js'

const EXAMPLE_FILTER = { all: [{ tag: 'newsletter' }, { last: 'activity', within_days: 30 }] }

function state (segment) {
  return segment.paused ? badge('paused', 'paused') : badge('active', 'on')
}

async function list (main) {
  await loading(main, async () => {
    const { data } = await api('GET', '/admin/segments')
    return listScreen('Segments', { href: '#/segments/_new', label: 'New segment' }, 'Segments', [
      { label: 'Segment', value: s => h('a', { href: `#/segments/${encode(s.id)}` }, s.name || s.id) },
      { label: 'Id', value: s => s.id },
      { label: 'State', value: state },
      { label: 'Version', value: s => String(s.version) }
    ], data.segments, 'No segments yet.')
  })
  showFlash(main)
}

/** What a save, resume or delete started to bring existing contacts in line. */
function backfillNote (saved) {
  const run = saved.backfill
  if (!run) return ''
  if (run.started === null) return ` Re-evaluating existing contacts did not start (${run.error}): start ${run.name} by hand.`
  return ' Existing contacts are being re-evaluated.'
}

async function members (segment) {
  try {
    const { data } = await api('GET', `/admin/segments/${encode(segment.id)}/count`)
    return h('p', { class: 'member-count' }, `${data.count} ${data.count === 1 ? 'member' : 'members'} · `,
      h('a', { href: `#/contacts?segment=${encode(segment.id)}` }, 'Browse the members'))
  } catch (error) {
    return h('p', { class: 'form-error' }, error.message)
  }
}

async function detail (main, match) {
  const isNew = match[1] === '_new'
  await loading(main, async () => {
    const { data } = isNew
      ? { data: { segment: { name: '', filter: EXAMPLE_FILTER }, history: [] } }
      : await api('GET', `/admin/segments/${encode(decode(match[1]))}`)
    const segment = data.segment
    const editor = form(
      isNew ? 'New segment' : `Segment ${segment.id}`,
      async element => {
        const id = isNew ? element.elements.id.value.trim() : segment.id
        const saved = await submit(element, {
          path: `/admin/segments/${encode(id || '-')}`,
          body: () => {
            if (!id) throw Object.assign(new Error('id: give the segment an id'), { field: 'id' })
            return collect(element, segment)
          },
          version: isNew ? 0 : segment.version
        })
        if (saved) {
          flash(`Segment ${saved.id} saved: version ${saved.version}.${backfillNote(saved)}`)
          go(`#/segments/${encode(saved.id)}`)
        }
      },
      isNew ? input('Segment id', 'id', '', { hint: 'Lower-case letters, digits, "-" and "_".' }) : null,
      input('Name', 'name', segment.name),
      text('Description', 'description', segment.description, { rows: 2 }),
      json('Filter', 'filter', segment.filter, {
        hint: 'JSON: a condition or a group, e.g. {"all": [{"tag": "kids"}, {"last": "activity", "within_days": 30}]} ' +
          '(docs/segments.md lists the conditions).'
      }),
      actions(h('button', { type: 'submit' }, isNew ? 'Create segment' : 'Save segment'))
    )
    const controls = []
    if (!isNew) {
      const verb = segment.paused ? 'resume' : 'pause'
      const toggle = h('button', { type: 'button', class: 'secondary' }, segment.paused ? 'Resume segment' : 'Pause segment')
      toggle.addEventListener('click', () => act(editor, toggle, async () => {
        const { data } = await api('POST', `/admin/segments/${encode(segment.id)}/${verb}`, { body: {}, version: segment.version })
        return data
      }, saved => {
        flash(`Segment ${saved.id} ${saved.paused ? 'paused: nobody enters or leaves it until it is resumed' : 'resumed'}.${backfillNote(saved)}`)
        go(`#/segments/${encode(saved.id)}`)
      }))
      controls.push(toggle, confirming('Delete segment', `Delete segment ${segment.id}? Its members leave it.`,
        'Delete', button => act(editor, button, async () => {
          const { data } = await api('DELETE', `/admin/segments/${encode(segment.id)}`, { body: {}, version: segment.version })
          return data
        }, deleted => {
          flash(`Segment ${deleted.deleted} deleted.${backfillNote(deleted)}`)
          go('#/segments')
        }), { danger: true }))
    }
    return [
      h('p', { class: 'breadcrumb' }, h('a', { href: '#/segments' }, 'Segments')),
      h('h1', {}, isNew ? 'New segment' : segment.name || segment.id),
      isNew ? null : h('div', { class: 'doc-meta' }, state(segment), versionLine(segment)),
      isNew ? null : await members(segment),
      controls.length ? actions(...controls) : null,
      editor,
      history(data.history, [
        { label: 'Version', value: s => String(s.version) },
        { label: 'Name', value: s => s.name },
        { label: 'Paused', value: s => (s.paused ? 'yes' : 'no') },
        { label: 'Saved', value: s => when(s.updated_at) }
      ])
    ].filter(Boolean)
  })
  showFlash(main)
}

export const nav = [{ href: '#/segments', label: 'Segments' }]
export const routes = [
  { pattern: /^\/segments$/, title: 'Segments', render: list },
  { pattern: /^\/segments\/([^/?]+)$/, title: 'Segment', render: detail }
]
