// Contacts: search, segment members, and the contact card.
import { h } from './ui.js'

export const nav = [{ href: '#/', label: 'Contacts' }]
export const routes = [
  { pattern: /^\/$/, title: 'Contacts', render: async main => main.replaceChildren(h('h1', {}, 'Contacts')) }
]
