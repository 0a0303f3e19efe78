// Issue 15: the product catalog, what recommendations show of a product and what they may not offer: the
// products a page at a time, one product's form (name, category, price, links, in stock) with what is
// bought together with it, and the settings (categories never recommended, catalog only).
import { api } from './api.js'
import {
  act, actions, checkbox, collect, confirming, decode, encode, flash, form, go, input, showFlash, submit, text
} from './editing.js'
import { announce, field, h, loading, table, when } from './ui.js'

const PAGE = 50

const price = value => (value === null || value === undefined ? '' : Number(value).toLocaleString(undefined, { maximumFractionDigits: 2 }))

/** A table of products, the first column linking to each one's screen. */
function products (caption, rows, empty) {
  return table(caption, [
    { label: 'Product', value: p => h('a', { href: `#/catalog/${encode(p.id)}` }, p.id) },
    { label: 'Name', value: p => p.name },
    { label: 'Category', value: p => p.category || '' },
    { label: 'Price', value: p => price(p.price) },
    { label: 'In stock', value: p => (p.in_stock ? 'yes' : 'no') }
  ], rows, empty)
}

/** The settings' form: the excluded categories (one a line) and "catalog only". */
function settingsForm (settings) {
  const element = form('Recommendation settings', async element => {
    const categories = element.elements.excluded_categories.value.split('\n').map(c => c.trim()).filter(Boolean)
    const saved = await submit(element, {
      path: '/admin/catalog/settings',
      body: { excluded_categories: categories, catalog_only: element.elements.catalog_only.checked }
    })
    if (saved) announce(`Settings saved: ${saved.excluded_categories.length} excluded categories.`)
  },
  text('Excluded categories', 'excluded_categories', (settings.excluded_categories || []).join('\n'), {
    hint: 'One category a line: its products are never recommended (upper or lower case alike).', rows: 4
  }),
  checkbox('Recommend only the products listed here', 'catalog_only', settings.catalog_only,
    'Otherwise a product tracked but not listed is recommended with its id alone.'),
  actions(h('button', { type: 'submit' }, 'Save settings')))
  return h('section', { 'aria-labelledby': 'catalog-settings' }, h('h2', { id: 'catalog-settings' }, 'Settings'), element)
}

/** `#/catalog`: the settings, then the products a page at a time ("More products" reads the next). */
async function list (main) {
  await loading(main, async () => {
    const [{ data: page }, { data: settings }] = await Promise.all([
      api('GET', '/admin/catalog/products', { query: { limit: PAGE } }),
      api('GET', '/admin/catalog/settings')
    ])
    const shown = [...page.products]
    const holder = h('div', {}, products('Catalog products', shown, 'No products yet.'))
    const more = h('button', { type: 'button', class: 'secondary', hidden: !page.next_cursor }, 'More products')
    let cursor = page.next_cursor
    more.addEventListener('click', async () => {
      more.disabled = true
      try {
        const { data } = await api('GET', '/admin/catalog/products', { query: { limit: PAGE, cursor } })
        shown.push(...data.products)
        cursor = data.next_cursor
        holder.replaceChildren(products('Catalog products', shown, 'No products yet.'))
        more.hidden = !cursor
        announce(`${data.products.length} more products shown`)
      } finally {
        more.disabled = false
      }
    })
    return [
      h('h1', {}, 'Catalog'),
      h('p', { class: 'actions' }, h('a', { class: 'button', href: '#/catalog/_new' }, 'New product')),
      settingsForm(settings),
      h('section', { 'aria-labelledby': 'catalog-products' }, h('h2', { id: 'catalog-products' }, 'Products'), holder, more)
    ]
  })
  showFlash(main)
}

/** What is bought together with the product (its neighbours in the nightly model, else the best-sellers). */
async function together (productId) {
  try {
    const { data } = await api('GET', `/admin/products/${encode(productId)}/recommendations`, { query: { n: 6 } })
    return table('Bought together', [
      { label: 'Product', value: r => h('a', { href: `#/catalog/${encode(r.product_id)}` }, r.name || r.product_id) },
      { label: 'Why', value: r => (r.reason === 'similar' ? 'Bought together' : 'Popular') }
    ], data.recommendations, 'Nothing yet: the nightly model has not run.')
  } catch (error) {
    return h('p', { class: 'empty' }, error.message)
  }
}

/** `#/catalog/<id>` (or `_new`): the product's form, delete, and what is bought together with it. */
async function detail (main, match) {
  const isNew = match[1] === '_new'
  const productId = isNew ? null : decode(match[1])
  await loading(main, async () => {
    let product = { name: '', in_stock: true }
    let stored = !isNew
    if (!isNew) {
      try {
        product = (await api('GET', `/admin/catalog/products/${encode(productId)}`)).data
      } catch (error) {
        if (error.status !== 404) throw error
        product = { id: productId, name: '', in_stock: true } // not listed yet: the form adds it
        stored = false
      }
    }
    const editor = form(
      isNew ? 'New product' : `Product ${productId}`,
      async element => {
        const id = isNew ? element.elements.productId.value.trim() : productId
        const saved = await submit(element, {
          path: `/admin/catalog/products/${encode(id || '-')}`,
          body: () => {
            if (!id) throw Object.assign(new Error('productId: give the product an id'), { field: 'productId' })
            return collect(element, product)
          }
        })
        if (saved) {
          flash(`Product ${saved.id} saved.`)
          go(`#/catalog/${encode(saved.id)}`)
        }
      },
      // the id is the address's (the API names it productId); not part of the collected document
      isNew ? field('Product id', h('input', { name: 'productId', autocomplete: 'off' }), 'As tracked calls name it (properties.product_id or sku).') : null,
      input('Name', 'name', product.name, { required: true }),
      input('Category', 'category', product.category),
      input('Price', 'price', product.price, { kind: 'float' }),
      input('Link', 'url', product.url, { type: 'url' }),
      input('Image link', 'image_url', product.image_url, { type: 'url' }),
      checkbox('In stock', 'in_stock', product.in_stock, 'Out of stock: never recommended.'),
      actions(h('button', { type: 'submit' }, stored ? 'Save product' : 'Add product'))
    )
    const controls = stored
      ? [confirming('Delete product', `Delete product ${productId} from the catalog?`, 'Delete', button =>
          act(editor, button, async () => (await api('DELETE', `/admin/catalog/products/${encode(productId)}`)).data,
            deleted => {
              flash(`Product ${deleted.deleted} deleted.`)
              go('#/catalog')
            }), { danger: true })]
      : []
    return [
      h('p', { class: 'breadcrumb' }, h('a', { href: '#/catalog' }, 'Catalog')),
      h('h1', {}, isNew ? 'New product' : `Product ${productId}`),
      stored && product.updated_at ? h('p', { class: 'doc-meta' }, `Updated ${when(product.updated_at)}`) : null,
      controls.length ? actions(...controls) : null,
      editor,
      isNew ? null : h('section', { 'aria-labelledby': 'bought-together' }, h('h2', { id: 'bought-together' }, 'Bought together'), await together(productId))
    ].filter(Boolean)
  })
  showFlash(main)
}

export const nav = [{ href: '#/catalog', label: 'Catalog' }]
export const routes = [
  { pattern: /^\/catalog$/, title: 'Catalog', render: list },
  { pattern: /^\/catalog\/([^/?]+)$/, title: 'Product', render: detail }
]
