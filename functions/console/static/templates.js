// Email templates: the list, one template's form (subject, text, HTML), delete a stored one, and a preview
// for a chosen contact. The preview's HTML is shown in a sandboxed frame (sandbox="": no script, no
// form, no navigation, its own origin): nothing a template holds ever runs in the console.
import { api } from './api.js'
import {
  act, actions, collect, confirming, decode, encode, flash, form, go, history, input, listScreen,
  showFlash, showRefusal, submit, text, versionLine
} from './editing.js'
import { clearErrors, field, h, loading, when } from './ui.js'

const ORIGINS = { built_in: 'built in', stored: 'stored by an administrator' }

async function list (main) {
  await loading(main, async () => {
    const { data } = await api('GET', '/admin/templates')
    return listScreen('Templates', { href: '#/templates/_new', label: 'New template' }, 'Email templates', [
      { label: 'Template', value: t => h('a', { href: `#/templates/${encode(t.id)}` }, t.id) },
      { label: 'Subject', value: t => t.subject },
      { label: 'Parts', value: t => ['text', 'html'].filter(p => t[p]).join(', ') },
      { label: 'Origin', value: t => ORIGINS[t.origin] || t.origin }
    ], data.templates, 'No templates.')
  })
  showFlash(main)
}

/** The preview: a contact id, then the rendered subject, text and HTML (in a sandboxed frame). */
function preview (template) {
  const shown = h('div', { class: 'preview', 'aria-live': 'polite' })
  const contact = h('input', { name: 'contact_id', type: 'text', 'data-kind': 'text', autocomplete: 'off' })
  const element = h('form', { class: 'card preview-form', novalidate: true, 'aria-label': 'Preview' },
    field('Contact id', contact, 'e.g. user_id:ann; empty: a sample contact.'),
    actions(h('button', { type: 'submit' }, 'Preview')))
  element.addEventListener('submit', async event => {
    event.preventDefault()
    clearErrors(element)
    const id = contact.value.trim()
    try {
      const { data } = await api('POST', `/admin/templates/${encode(template.id)}/preview`, {
        body: id ? { contact_id: id } : {}
      })
      const frame = h('iframe', { class: 'preview-frame', sandbox: '', title: `The email’s HTML, for ${data.contact_id}`, referrerpolicy: 'no-referrer' })
      frame.srcdoc = data.html || ''
      shown.replaceChildren(
        h('h3', {}, `For ${data.contact_id}`),
        h('dl', { class: 'preview-subject' }, h('dt', {}, 'Subject'), h('dd', {}, data.subject)),
        data.text ? h('details', { open: !data.html }, h('summary', {}, 'Text part'), h('pre', { class: 'preview-text' }, data.text)) : null,
        data.html ? frame : null
      )
    } catch (error) {
      shown.replaceChildren()
      if (error.status === 404 && !error.field) error.field = 'contact_id' // no such contact
      showRefusal(element, error)
    }
  })
  return h('section', { 'aria-labelledby': 'template-preview' }, h('h2', { id: 'template-preview' }, 'Preview'), element, shown)
}

async function detail (main, match) {
  const isNew = match[1] === '_new'
  await loading(main, async () => {
    const { data } = isNew
      ? { data: { template: { subject: '', text: 'Hello {{ contact.traits.first_name }}' }, history: [] } }
      : await api('GET', `/admin/templates/${encode(decode(match[1]))}`)
    const template = data.template
    const editor = form(
      isNew ? 'New template' : `Template ${template.id}`,
      async element => {
        const id = isNew ? element.elements.id.value.trim() : template.id
        const saved = await submit(element, {
          path: `/admin/templates/${encode(id || '-')}`,
          body: () => {
            if (!id) throw Object.assign(new Error('id: give the template an id'), { field: 'id' })
            const document = collect(element, template)
            // issue 15: an empty survey question makes the template an ordinary one again
            if (document.survey && !document.survey.question) delete document.survey
            return document
          },
          version: isNew ? 0 : template.version
        })
        if (saved) {
          flash(`Template ${saved.id} saved: version ${saved.version}.`)
          go(`#/templates/${encode(saved.id)}`)
        }
      },
      isNew ? input('Template id', 'id', '', { hint: 'Lower-case letters, digits, ".", "_", ":" and "-".' }) : null,
      input('Description', 'description', template.description),
      input('Subject', 'subject', template.subject),
      text('Text part', 'text', template.text, { hint: 'Jinja: {{ contact.traits.first_name }}, {{ unsubscribe_url }}... Empty: none.', rows: 8 }),
      text('HTML part', 'html', template.html, { hint: 'Empty: none. At least one of text and HTML.', rows: 10 }),
      input('NPS survey question', 'survey.question', template.survey && template.survey.question, {
        hint: 'Set, the template is an NPS survey with one answer link per score: {{ survey.question }}, {{ survey.links[10] }}, {% for s in survey.scores %}. Empty: not a survey.'
      }),
      actions(h('button', { type: 'submit' }, isNew ? 'Create template' : 'Save template'))
    )
    const controls = []
    if (!isNew && template.origin === 'stored') {
      controls.push(confirming('Delete template', `Delete template ${template.id}? A built-in template with this id applies again.`,
        'Delete', button => act(editor, button, async () => {
          const { data } = await api('DELETE', `/admin/templates/${encode(template.id)}`, { body: {}, version: template.version })
          return data
        }, deleted => {
          flash(`Template ${deleted.deleted} deleted${deleted.built_in_applies ? ': the built-in one applies again' : ''}.`)
          go(deleted.built_in_applies ? `#/templates/${encode(template.id)}` : '#/templates')
        }), { danger: true }))
    }
    return [
      h('p', { class: 'breadcrumb' }, h('a', { href: '#/templates' }, 'Templates')),
      h('h1', {}, isNew ? 'New template' : `Template ${template.id}`),
      isNew ? null : h('div', { class: 'doc-meta' }, versionLine(template, ORIGINS)),
      controls.length ? actions(...controls) : null,
      editor,
      isNew ? null : preview(template),
      history(data.history, [
        { label: 'Version', value: t => String(t.version) },
        { label: 'Subject', value: t => t.subject },
        { label: 'Saved', value: t => when(t.updated_at) }
      ])
    ].filter(Boolean)
  })
  showFlash(main)
}

export const nav = [{ href: '#/templates', label: 'Templates' }]
export const routes = [
  { pattern: /^\/templates$/, title: 'Templates', render: list },
  { pattern: /^\/templates\/([^/?]+)$/, title: 'Template', render: detail }
]
