// Segments: the list, one segment's form (name, description, the filter as JSON), pause and resume, delete,
// its member count and a link to its members (the contacts screen browses them).
import { api } from './api.js'
import {
  actions, collect, decode, encode, flash, form, go, input, json, listScreen, pausableDocument, pausedState,
  showFlash, submit, text
} from './editing.js'
import { h, loading } from './ui.js'

const EXAMPLE_FILTER = { all: [{ tag: 'newsletter' }, { last: 'activity', within_days: 30 }] }

async function list (main) {
  await loading(main, async () => {
    const { data } = await api('GET', '/admin/segments')
    return listScreen('Segments', { href: '#/segments/_new', label: 'New segment' }, 'Segments', [
      { label: 'Segment', value: s => h('a', { href: `#/segments/${encode(s.id)}` }, s.name || s.id) },
      { label: 'Id', value: s => s.id },
      { label: 'State', value: pausedState },
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
    const parts = pausableDocument(editor, segment, data.history, {
      isNew,
      noun: 'segment',
      collection: 'segments',
      deleteQuestion: `Delete segment ${segment.id}? Its members leave it.`,
      pausedNote: ': nobody enters or leaves it until it is resumed',
      afterNote: backfillNote
    })
    return [
      ...parts.heading,
      isNew ? null : await members(segment),
      parts.controls,
      editor,
      parts.history
    ].filter(Boolean)
  })
  showFlash(main)
}

export const nav = [{ href: '#/segments', label: 'Segments' }]
export const routes = [
  { pattern: /^\/segments$/, title: 'Segments', render: list },
  { pattern: /^\/segments\/([^/?]+)$/, title: 'Segment', render: detail }
]
