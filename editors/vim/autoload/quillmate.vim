" quillmate for Vim 9: ghost-text continuations, rewrites with a preview,
" templates and provenance through `quillmate lsp` (see editors/PROTOCOL.md).
"
" The server runs as a job with Vim's LSP channel mode, so Vim does the
" Content-Length framing and JSON. Documents are synced in full before every
" request (prose buffers are small); the suggestion is drawn with text
" properties carrying virtual text (Vim 9.0.0067 or newer).

let s:job = v:null
let s:ready = 0
let s:queue = []
let s:streams = {}
let s:ghosts = {}
let s:preview = {}
let s:counter = 0
let s:last_error = ''
let s:prop = 'quillmate_ghost'

function! s:opt(name, default) abort
  return get(g:, 'quillmate_' . a:name, a:default)
endfunction

function! s:warn(msg) abort
  echohl WarningMsg | echomsg 'quillmate: ' . a:msg | echohl None
endfunction

function! s:error(msg) abort
  let s:last_error = a:msg
  echohl ErrorMsg | echomsg 'quillmate: ' . a:msg | echohl None
endfunction

" Positions: Vim counts bytes, LSP counts UTF-16 code units. ---------------

function! s:utf16len(text) abort
  let n = 0
  for ch in split(a:text, '\zs')
    let n += char2nr(ch) > 0xFFFF ? 2 : 1
  endfor
  return n
endfunction

function! s:lsp_pos(buf, lnum, col) abort
  let line = get(getbufline(a:buf, a:lnum), 0, '')
  return {'line': a:lnum - 1, 'character': s:utf16len(strpart(line, 0, a:col))}
endfunction

function! s:byte_col(buf, pos) abort
  let line = get(getbufline(a:buf, a:pos.line + 1), 0, '')
  let col = 0
  let units = 0
  for ch in split(line, '\zs')
    if units >= a:pos.character
      break
    endif
    let units += char2nr(ch) > 0xFFFF ? 2 : 1
    let col += len(ch)
  endfor
  return col
endfunction

function! s:uri(buf) abort
  let path = fnamemodify(bufname(a:buf), ':p')
  let encoded = substitute(path, '[^A-Za-z0-9/._~-]', '\=printf("%%%02X", char2nr(submatch(0)))', 'g')
  return 'file://' . encoded
endfunction

function! s:buffer_text(buf) abort
  return join(getbufline(a:buf, 1, '$'), "\n") . "\n"
endfunction

" The server ---------------------------------------------------------------

function! quillmate#running() abort
  return s:job isnot v:null && job_status(s:job) ==# 'run'
endfunction

function! quillmate#ready() abort
  return quillmate#running() && s:ready
endfunction

function! quillmate#start() abort
  if quillmate#running()
    return 1
  endif
  let cmd = s:opt('cmd', ['quillmate', 'lsp'])
  if !executable(cmd[0])
    call s:error('`' . cmd[0] . '` was not found on PATH; install quillmate or set g:quillmate_cmd')
    return 0
  endif
  let s:ready = 0
  let s:job = job_start(cmd, {
        \ 'in_mode': 'lsp',
        \ 'out_mode': 'lsp',
        \ 'err_mode': 'nl',
        \ 'out_cb': function('s:on_message'),
        \ 'err_cb': function('s:on_stderr'),
        \ 'exit_cb': function('s:on_exit'),
        \ 'noblock': 1,
        \ })
  if job_status(s:job) !=# 'run'
    call s:error('the language server could not be started with: ' . join(cmd))
    let s:job = v:null
    return 0
  endif
  let params = {
        \ 'processId': getpid(),
        \ 'clientInfo': {'name': 'quillmate.vim'},
        \ 'rootUri': 'file://' . getcwd(),
        \ 'capabilities': {'window': {'showMessage': {}}, 'workspace': {'applyEdit': v:true}},
        \ 'initializationOptions': s:opt('init_options', {}),
        \ }
  call ch_sendexpr(s:job, {'method': 'initialize', 'params': params}, {'callback': function('s:on_initialized')})
  return 1
endfunction

function! s:on_initialized(channel, msg) abort
  if has_key(a:msg, 'error')
    call s:error('the language server failed to start: ' . get(a:msg.error, 'message', ''))
    return
  endif
  call ch_sendexpr(s:job, {'method': 'initialized', 'params': {}})
  let s:ready = 1
  let queue = s:queue
  let s:queue = []
  for Fn in queue
    call Fn()
  endfor
endfunction

function! s:on_stderr(channel, line) abort
  " Logs; shown with :messages only when g:quillmate_debug is set.
  if s:opt('debug', 0)
    echomsg 'quillmate lsp: ' . a:line
  endif
endfunction

function! s:on_exit(job, status) abort
  let s:job = v:null
  let s:ready = 0
  for buf in keys(s:ghosts)
    call quillmate#dismiss(str2nr(buf))
  endfor
  for buf in getbufinfo()
    call setbufvar(buf.bufnr, 'quillmate_version', 0)
  endfor
  if a:status != 0
    call s:warn('the language server stopped (exit code ' . a:status . ')')
  endif
endfunction

function! quillmate#stop() abort
  if quillmate#running()
    call ch_sendexpr(s:job, {'method': 'shutdown'}, {'callback': {ch, msg -> ch_sendexpr(ch, {'method': 'exit'})}})
    let deadline = reltime()
    while quillmate#running() && reltimefloat(reltime(deadline)) < 3
      sleep 20m
    endwhile
    if quillmate#running()
      call job_stop(s:job)
    endif
  endif
endfunction

" Messages from the server: notifications and requests.
function! s:on_message(channel, msg) abort
  let method = get(a:msg, 'method', '')
  if method ==# 'quillmate/progress'
    let Handler = get(s:streams, get(a:msg.params, 'streamId', ''), v:null)
    if Handler isnot v:null
      call Handler(a:msg.params)
    endif
  elseif method ==# 'window/showMessage'
    " The server's lines already start with "quillmate: ".
    let text = substitute(a:msg.params.message, '^quillmate: ', '', '')
    if get(a:msg.params, 'type', 3) == 1
      call s:error(text)
    else
      echomsg 'quillmate: ' . text
    endif
  elseif method ==# 'workspace/applyEdit' && has_key(a:msg, 'id')
    let applied = s:apply_workspace_edit(a:msg.params.edit)
    call ch_sendexpr(s:job, {'id': a:msg.id, 'result': {'applied': applied ? v:true : v:false}})
  elseif method !=# '' && has_key(a:msg, 'id')
    call ch_sendexpr(s:job, {'id': a:msg.id, 'result': v:null})
  endif
endfunction

" Run Fn once the server is initialized.
function! s:when_ready(Fn) abort
  if !quillmate#start()
    return
  endif
  if s:ready
    call a:Fn()
  else
    call add(s:queue, a:Fn)
  endif
endfunction

" Open or refresh the document on the server.
function! s:sync(buf) abort
  if !getbufvar(a:buf, 'quillmate_attached', 0) || !s:ready
    return
  endif
  let doc_version = getbufvar(a:buf, 'quillmate_version', 0)
  let tick = getbufvar(a:buf, 'changedtick')
  if doc_version == 0
    call setbufvar(a:buf, 'quillmate_version', 1)
    call ch_sendexpr(s:job, {'method': 'textDocument/didOpen', 'params': {'textDocument': {
          \ 'uri': s:uri(a:buf), 'languageId': getbufvar(a:buf, '&filetype', 'text'),
          \ 'version': 1, 'text': s:buffer_text(a:buf)}}})
  elseif getbufvar(a:buf, 'quillmate_tick', -1) != tick
    call setbufvar(a:buf, 'quillmate_version', doc_version + 1)
    call ch_sendexpr(s:job, {'method': 'textDocument/didChange', 'params': {
          \ 'textDocument': {'uri': s:uri(a:buf), 'version': doc_version + 1},
          \ 'contentChanges': [{'text': s:buffer_text(a:buf)}]}})
  endif
  call setbufvar(a:buf, 'quillmate_tick', tick)
endfunction

" Attach a buffer: the server opens it and keeps it in step.
function! quillmate#attach(...) abort
  let buf = a:0 ? a:1 : bufnr('%')
  if getbufvar(buf, 'quillmate_attached', 0)
    return
  endif
  call setbufvar(buf, 'quillmate_attached', 1)
  call setbufvar(buf, 'quillmate_version', 0)
  call s:when_ready({-> s:sync(buf)})
  execute 'augroup quillmate_buf_' . buf
  autocmd!
  execute 'autocmd BufWritePost,InsertLeave,CursorHold <buffer=' . buf . '> call s:sync(' . buf . ')'
  execute 'autocmd TextChanged,TextChangedI <buffer=' . buf . '> call s:on_text_changed(' . buf . ')'
  execute 'autocmd InsertLeave,BufLeave <buffer=' . buf . '> call quillmate#dismiss(' . buf . ')'
  execute 'autocmd BufUnload <buffer=' . buf . '> call s:close(' . buf . ')'
  augroup END
  if !s:opt('no_maps', 0)
    call s:default_maps()
  endif
endfunction

function! s:close(buf) abort
  if quillmate#ready() && getbufvar(a:buf, 'quillmate_version', 0)
    call ch_sendexpr(s:job, {'method': 'textDocument/didClose', 'params': {'textDocument': {'uri': s:uri(a:buf)}}})
  endif
  call setbufvar(a:buf, 'quillmate_attached', 0)
endfunction

function! s:default_maps() abort
  let maps = {
        \ 'suggest': '<M-\>', 'accept': '<M-a>', 'accept-word': '<M-w>', 'accept-line': '<M-l>',
        \ 'next': '<M-]>', 'prev': '<M-[>', 'dismiss': '<M-e>', 'cancel': '<M-c>', 'alternatives': '<M-o>'}
  call extend(maps, s:opt('keys', {}))
  for [name, lhs] in items(maps)
    let plug = '<Plug>(quillmate-' . name . ')'
    for mode in ['n', 'i']
      if !empty(lhs) && !hasmapto(plug, mode)
        execute mode . 'map <buffer> ' . lhs . ' ' . plug
      endif
    endfor
  endfor
endfunction

" Send a request once ready; Callback(msg) receives the whole response.
function! s:request(method, params, Callback) abort
  let buf = bufnr('%')
  let box = {'id': -1}
  call s:when_ready({-> s:send(buf, a:method, a:params, a:Callback, box)})
  return box
endfunction

function! s:send(buf, method, params, Callback, box) abort
  call s:sync(a:buf)
  let sent = ch_sendexpr(s:job, {'method': a:method, 'params': a:params}, {'callback': {ch, msg -> a:Callback(msg)}})
  let a:box.id = get(sent, 'id', -1)
endfunction

function! s:cancel_id(id) abort
  if a:id >= 0 && quillmate#running()
    call ch_sendexpr(s:job, {'method': '$/cancelRequest', 'params': {'id': a:id}})
  endif
endfunction

function! s:next_stream() abort
  let s:counter += 1
  return 'vim-' . getpid() . '-' . s:counter
endfunction

" Ghost text -----------------------------------------------------------------

function! s:ensure_prop_type() abort
  if empty(prop_type_get(s:prop))
    if !hlexists('QuillmateSuggestion')
      highlight default link QuillmateSuggestion Comment
    endif
    call prop_type_add(s:prop, {'highlight': 'QuillmateSuggestion'})
  endif
endfunction

function! s:clear_props(buf) abort
  if !empty(prop_type_get(s:prop)) && bufexists(a:buf)
    call prop_remove({'type': s:prop, 'bufnr': a:buf, 'all': 1})
  endif
endfunction

function! s:render(buf) abort
  call s:clear_props(a:buf)
  let g = get(s:ghosts, a:buf, {})
  if empty(g)
    return
  endif
  let text = get(g.items, g.index, '')
  if text ==# ''
    return
  endif
  call s:ensure_prop_type()
  let lines = split(text, "\n", 1)
  " What was placed, as [col, text, align]: Vim 9.0's prop_list() does not return virtual text.
  let g.shown = []
  let line = get(getbufline(a:buf, g.lnum), 0, '')
  let col = min([g.col, len(line)])
  if !empty(lines[0])
    " Inline at the insertion point (after the line when the cursor is at its end).
    call prop_add(g.lnum, col + 1, {'type': s:prop, 'text': lines[0], 'bufnr': a:buf})
    call add(g.shown, [col + 1, lines[0], 'inline'])
  endif
  let label = len(g.items) > 1 ? printf('  (%d/%d)', g.index + 1, len(g.items)) : ''
  for rest in lines[1:]
    " A blank line is drawn as one space: Vim draws no empty virtual line.
    let drawn = empty(rest) ? ' ' : rest
    call prop_add(g.lnum, 0, {'type': s:prop, 'text': drawn, 'text_align': 'below', 'bufnr': a:buf})
    call add(g.shown, [0, drawn, 'below'])
  endfor
  if label !=# ''
    call prop_add(g.lnum, 0, {'type': s:prop, 'text': label, 'text_align': 'after', 'bufnr': a:buf})
  endif
  call add(g.renders, len(text))
endfunction

function! s:insert_point() abort
  let lnum = line('.')
  let col = col('.') - 1
  if mode() !~# '^i' && !empty(getline('.'))
    " In Normal mode the cursor sits on a character: continue after it, like `a`.
    let col = min([col + len(matchstr(getline('.')[col :], '^.')), len(getline('.'))])
  endif
  return [lnum, col]
endfunction

" A suggestion shown at (lnum, col), made the buffer's; pending while `stream` is not ''.
function! s:new_ghost(buf, lnum, col, items, index, stream) abort
  let g = {'buf': a:buf, 'lnum': a:lnum, 'col': a:col, 'items': a:items, 'index': a:index,
        \ 'stream': a:stream, 'pending': a:stream !=# '', 'done': a:stream ==# '', 'cancelled': 0, 'error': '',
        \ 'renders': [], 'tick': getbufvar(a:buf, 'changedtick'), 'request': {'id': -1}}
  let s:ghosts[a:buf] = g
  return g
endfunction

" Ask for a continuation; the ghost text grows while the model writes.
" Options: n (alternatives), lnum, col (0-based byte), max_new_tokens, index.
function! quillmate#suggest(...) abort
  let opts = a:0 ? a:1 : {}
  let buf = bufnr('%')
  call quillmate#attach(buf)
  call quillmate#dismiss(buf)
  let [lnum, col] = has_key(opts, 'lnum') ? [opts.lnum, opts.col] : s:insert_point()
  let stream = s:next_stream()
  let g = s:new_ghost(buf, lnum, col, [], get(opts, 'index', 0), stream)
  let s:streams[stream] = function('s:on_ghost_progress', [g])
  let ext = {'n': get(opts, 'n', 1), 'streamId': stream}
  if has_key(opts, 'max_new_tokens')
    let ext.maxNewTokens = opts.max_new_tokens
  endif
  let params = {'textDocument': {'uri': s:uri(buf)}, 'position': s:lsp_pos(buf, lnum, col),
        \ 'context': {'triggerKind': 1}, 'quillmate': ext}
  let g.request = s:request('textDocument/inlineCompletion', params, function('s:on_ghost_done', [g]))
endfunction

function! s:on_ghost_progress(g, params) abort
  if get(s:ghosts, a:g.buf, {}) isnot a:g
    return
  endif
  let index = get(a:params, 'index', 0)
  while len(a:g.items) <= index
    call add(a:g.items, '')
  endwhile
  let a:g.items[index] = get(a:params, 'text', '')
  if index == a:g.index
    call s:render(a:g.buf)
  endif
endfunction

function! s:on_ghost_done(g, msg) abort
  call remove(s:streams, a:g.stream)
  if get(s:ghosts, a:g.buf, {}) isnot a:g
    return
  endif
  let a:g.pending = 0
  if has_key(a:msg, 'error')
    if get(a:msg.error, 'code', 0) == -32800
      let a:g.cancelled = 1
    else
      let a:g.error = get(a:msg.error, 'message', 'the request failed')
    endif
    if get(a:g.items, a:g.index, '') ==# ''
      call quillmate#dismiss(a:g.buf)
    endif
    return
  endif
  let result = get(a:msg, 'result', {})
  let items = []
  for item in type(result) == v:t_dict ? get(result, 'items', []) : []
    let text = item.insertText
    call add(items, type(text) == v:t_dict ? text.value : text)
  endfor
  if empty(items) || items == ['']
    let a:g.items = []
    call s:render(a:g.buf)
    echomsg 'quillmate: the model had nothing to add here'
    return
  endif
  let a:g.items = items
  let a:g.index = min([a:g.index, len(items) - 1])
  let a:g.done = 1
  call s:render(a:g.buf)
endfunction

function! s:on_text_changed(buf) abort
  let g = get(s:ghosts, a:buf, {})
  if !empty(g) && g.tick != getbufvar(a:buf, 'changedtick')
    call quillmate#dismiss(a:buf)
  endif
endfunction

" Stop the model; what it wrote so far stays as ghost text.
function! quillmate#cancel(...) abort
  let buf = a:0 ? a:1 : bufnr('%')
  let g = get(s:ghosts, buf, {})
  if !empty(g) && g.pending
    call s:cancel_id(g.request.id)
    return 1
  endif
  return 0
endfunction

" Remove the ghost text (stopping the model if it is still writing).
function! quillmate#dismiss(...) abort
  let buf = a:0 ? a:1 : bufnr('%')
  call quillmate#cancel(buf)
  if has_key(s:ghosts, buf)
    call remove(s:ghosts, buf)
  endif
  call s:clear_props(buf)
endfunction

" Insert text at (lnum, col); returns the [lnum, col] where it ends.
function! s:insert(buf, lnum, col, text) abort
  let line = get(getbufline(a:buf, a:lnum), 0, '')
  let parts = split(a:text, "\n", 1)
  let before = strpart(line, 0, a:col)
  let after = strpart(line, a:col)
  let parts[0] = before . parts[0]
  let end_col = len(parts[-1])
  let parts[-1] .= after
  call setbufline(a:buf, a:lnum, parts[0])
  if len(parts) > 1
    call appendbufline(a:buf, a:lnum, parts[1:])
  endif
  return [a:lnum + len(parts) - 1, len(parts) == 1 ? a:col + len(a:text) : end_col]
endfunction

function! s:report_accept(buf, text, lnum, col) abort
  if a:text ==# '' || !quillmate#ready()
    return
  endif
  let args = [{'uri': s:uri(a:buf), 'text': a:text, 'position': s:lsp_pos(a:buf, a:lnum, a:col)}]
  call s:request('workspace/executeCommand', {'command': 'quillmate.accept', 'arguments': args},
        \ {msg -> has_key(msg, 'error') ? s:warn('could not record the accepted text: ' . msg.error.message) : 0})
endfunction

function! s:accept_part(kind) abort
  let buf = bufnr('%')
  let g = get(s:ghosts, buf, {})
  let text = empty(g) ? '' : get(g.items, g.index, '')
  if text ==# ''
    return 0
  endif
  if g.pending
    call quillmate#cancel(buf)
    let g.pending = 0
    silent! call remove(s:streams, g.stream)
  endif
  if a:kind ==# 'word'
    " Not \S: in a String it matches a line break too.
    let part = matchstr(text, "^\\_s*[^ \t\n]\\+")
  elseif a:kind ==# 'line'
    let part = matchstr(text, "^\n\\?[^\n]*")
  else
    let part = text
  endif
  if part ==# ''
    let part = text
  endif
  let [lnum, col] = [g.lnum, min([g.col, len(get(getbufline(buf, g.lnum), 0, ''))])]
  " Drop the props first so they do not shift with the inserted text.
  call s:clear_props(buf)
  let [end_lnum, end_col] = s:insert(buf, lnum, col, part)
  call s:report_accept(buf, part, lnum, col)
  call cursor(end_lnum, end_col + 1)
  let rest = strpart(text, len(part))
  if rest ==# ''
    call quillmate#dismiss(buf)
  else
    let g.items = [rest]
    let g.index = 0
    let [g.lnum, g.col] = [end_lnum, end_col]
    let g.tick = getbufvar(buf, 'changedtick')
    call s:render(buf)
  endif
  return 1
endfunction

function! quillmate#accept() abort
  return s:accept_part('all')
endfunction

function! quillmate#accept_word() abort
  return s:accept_part('word')
endfunction

function! quillmate#accept_line() abort
  return s:accept_part('line')
endfunction

function! s:cycle(step) abort
  let buf = bufnr('%')
  let g = get(s:ghosts, buf, {})
  if empty(g)
    return
  endif
  if len(g.items) < 2 && !g.pending
    call quillmate#suggest({'n': s:opt('alternatives', 3), 'lnum': g.lnum, 'col': g.col, 'index': 1})
    return
  endif
  let g.index = (g.index + a:step + len(g.items)) % max([len(g.items), 1])
  call s:render(buf)
endfunction

function! quillmate#next() abort
  call s:cycle(1)
endfunction

function! quillmate#prev() abort
  call s:cycle(-1)
endfunction

" The ghost text state of a buffer (for statuslines and tests).
function! quillmate#suggestion(...) abort
  let buf = a:0 ? a:1 : bufnr('%')
  let g = get(s:ghosts, buf, {})
  if empty(g)
    return {}
  endif
  return {'text': get(g.items, g.index, ''), 'index': g.index, 'count': len(g.items), 'pending': g.pending,
        \ 'done': g.done, 'cancelled': g.cancelled, 'error': g.error, 'renders': copy(g.renders),
        \ 'shown': deepcopy(get(g, 'shown', []))}
endfunction

" Previews: rewrites and template edits ---------------------------------------

function! s:range_text(buf, r) abort
  let lines = getbufline(a:buf, a:r[0], a:r[2])
  if empty(lines)
    return ''
  endif
  let lines[-1] = strpart(lines[-1], 0, a:r[3])
  let lines[0] = strpart(lines[0], a:r[1])
  return join(lines, "\n")
endfunction

function! s:lsp_range(buf, r) abort
  return {'start': s:lsp_pos(a:buf, a:r[0], a:r[1]), 'end': s:lsp_pos(a:buf, a:r[2], a:r[3])}
endfunction

" [lnum1, col1, lnum2, col2]: 1-based lines, 0-based byte cols, end exclusive.
function! s:command_range(line1, line2) abort
  let [vs, ve] = [getpos("'<"), getpos("'>")]
  if visualmode() ==# 'v' && vs[1] == a:line1 && ve[1] == a:line2
    let last = getline(a:line2)
    let ecol = min([ve[2] - 1 + len(matchstr(last[ve[2] - 1 :], '^.')), len(last)])
    return [a:line1, vs[2] - 1, a:line2, ecol]
  endif
  return [a:line1, 0, a:line2, len(getline(a:line2))]
endfunction

function! s:preview_lines() abort
  let p = s:preview
  let lines = ['quillmate ' . p.title . '    a: accept   r: reject', '']
  if !has_key(p, 'new')
    call add(lines, 'The model is writing…')
    return lines + split(get(p, 'streamed', ''), "\n", 1)
  endif
  if p.new ==# p.old
    return lines + ['(the model left the passage as it was)']
  endif
  return lines + map(split(p.old, "\n", 1), '"- " . v:val') + map(split(p.new, "\n", 1), '"+ " . v:val')
endfunction

function! s:refresh_preview() abort
  if empty(s:preview) || !bufexists(s:preview.pbuf)
    return
  endif
  call setbufvar(s:preview.pbuf, '&modifiable', 1)
  call deletebufline(s:preview.pbuf, 1, '$')
  call setbufline(s:preview.pbuf, 1, s:preview_lines())
  call setbufvar(s:preview.pbuf, '&modifiable', 0)
endfunction

function! s:close_preview() abort
  if !empty(s:preview) && bufexists(s:preview.pbuf)
    execute 'silent! bwipeout! ' . s:preview.pbuf
  endif
  let s:preview = {}
endfunction

function! s:open_preview(p) abort
  call s:close_preview()
  let s:preview = a:p
  botright new
  setlocal buftype=nofile bufhidden=wipe noswapfile filetype=diff
  silent! file quillmate-preview
  resize 12
  let a:p.pbuf = bufnr('%')
  nnoremap <buffer> <silent> a :call quillmate#preview_accept()<CR>
  nnoremap <buffer> <silent> <CR> :call quillmate#preview_accept()<CR>
  nnoremap <buffer> <silent> r :call quillmate#preview_reject()<CR>
  nnoremap <buffer> <silent> q :call quillmate#preview_reject()<CR>
  call s:refresh_preview()
  wincmd p
endfunction

" Apply the previewed rewrite and record it as the model's words.
function! quillmate#preview_accept() abort
  let p = s:preview
  if empty(p) || !has_key(p, 'new')
    call s:warn('there is no finished rewrite to accept')
    return 0
  endif
  call s:close_preview()
  if getbufvar(p.buf, 'changedtick') != p.tick
    call s:warn('the text changed since the rewrite was asked for; nothing was replaced — ask again')
    return 0
  endif
  let r = p.range
  let lines = getbufline(p.buf, r[0], r[2])
  let before = strpart(lines[0], 0, r[1])
  let after = strpart(lines[-1], r[3])
  let new_lines = split(before . p.new . after, "\n", 1)
  call deletebufline(p.buf, r[0], r[2])
  call appendbufline(p.buf, r[0] - 1, new_lines)
  call s:report_accept(p.buf, p.new, r[0], r[1])
  return 1
endfunction

" Close the preview; the text stays as it was.
function! quillmate#preview_reject() abort
  let p = s:preview
  if empty(p)
    return 0
  endif
  if get(p, 'pending', 0)
    call s:cancel_id(p.request.id)
  endif
  call s:close_preview()
  return 1
endfunction

function! quillmate#preview() abort
  return empty(s:preview) ? {} : {'new': get(s:preview, 'new', v:null), 'old': s:preview.old,
        \ 'pending': s:preview.pending, 'error': get(s:preview, 'error', '')}
endfunction

" Send a request whose result edits `range` (previewed first) or inserts text
" (given to OnInsert(text, edit)). NewText(result), if given, is the previewed text.
function! s:request_edit(method, params, title, range, OnInsert, ...) abort
  let buf = bufnr('%')
  call quillmate#attach(buf)
  let stream = s:next_stream()
  let a:params.streamId = stream
  let p = {'buf': buf, 'range': a:range, 'title': a:title, 'pending': 1, 'pbuf': -1,
        \ 'old': empty(a:range) ? '' : s:range_text(buf, a:range), 'tick': getbufvar(buf, 'changedtick')}
  if !empty(a:range)
    call s:open_preview(p)
  endif
  let s:streams[stream] = function('s:on_edit_progress', [p])
  let p.request = s:request(a:method, a:params, function('s:on_edit_done', [p, stream, a:OnInsert, a:0 ? a:1 : v:null]))
endfunction

function! s:on_edit_progress(p, params) abort
  if s:preview is a:p
    let a:p.streamed = get(a:params, 'text', '')
    call s:refresh_preview()
  endif
endfunction

function! s:on_edit_done(p, stream, OnInsert, NewText, msg) abort
  silent! call remove(s:streams, a:stream)
  let a:p.pending = 0
  if has_key(a:msg, 'error')
    let a:p.error = get(a:msg.error, 'message', 'the request failed')
    if s:preview is a:p
      call s:close_preview()
    endif
    return
  endif
  let result = a:msg.result
  if get(result, 'output', 'edit') ==# 'insert' || empty(a:p.range)
    " Nothing to preview: the text comes as ghost text to accept or dismiss.
    if s:preview is a:p
      call s:close_preview()
    endif
    call a:OnInsert(get(result, 'text', get(result, 'newText', '')), get(result, 'edit', {}))
    return
  endif
  let a:p.new = a:NewText isnot v:null ? a:NewText(result) : get(result, 'newText', get(result, 'text', ''))
  if s:preview is a:p
    call s:refresh_preview()
  endif
endfunction

" Rewrite [lnum1, col1, lnum2, col2] as instructed, shown as a preview.
function! quillmate#rewrite(instruction, range) abort
  if empty(a:instruction)
    call s:error('say how to rewrite it, e.g. :Quillmate rewrite vivid')
    return
  endif
  let buf = bufnr('%')
  let params = {'textDocument': {'uri': s:uri(buf)}, 'range': s:lsp_range(buf, a:range), 'instruction': a:instruction}
  call s:request_edit('quillmate/rewrite', params, 'rewrite (' . a:instruction . ')', a:range, {t -> 0})
endfunction

" Run a template: `insert` output becomes ghost text (after the selection, as a
" new paragraph, when run on a range; else at the cursor); `edit` output on a
" range becomes a preview.
function! quillmate#template(name, variables, range) abort
  let buf = bufnr('%')
  let params = {'template': a:name, 'variables': a:variables, 'textDocument': {'uri': s:uri(buf)}}
  if !empty(a:range)
    let params.range = s:lsp_range(buf, a:range)
  endif
  let [lnum, col] = s:insert_point()
  call s:request_edit('quillmate/runTemplate', params, 'template ' . a:name, a:range,
        \ function('s:show_inserted', [buf, lnum, col]))
endfunction

function! s:show_inserted(buf, lnum, col, text, edit) abort
  if a:text ==# ''
    return
  endif
  let [lnum, col, text] = [a:lnum, a:col, a:text]
  " Where the server would insert it: the edit's one insertion in this buffer.
  let edits = get(get(a:edit, 'changes', {}), s:uri(a:buf), [])
  if len(edits) == 1 && edits[0].range.start == edits[0].range.end
    let [lnum, col, text] = [edits[0].range.start.line + 1, s:byte_col(a:buf, edits[0].range.start), edits[0].newText]
  endif
  call s:new_ghost(a:buf, lnum, col, [text], 0, '')
  call s:render(a:buf)
endfunction

" Information ------------------------------------------------------------------

" The session's spans: Callback({sessionId, spans}) or Callback({}) on failure.
function! quillmate#provenance(Callback) abort
  call quillmate#attach()
  call s:request('quillmate/provenance', {'textDocument': {'uri': s:uri(bufnr('%'))}},
        \ {msg -> a:Callback(get(msg, 'result', {}))})
endfunction

function! s:show_provenance(result) abort
  if empty(a:result)
    return
  endif
  let session = get(a:result, 'sessionId', v:null)
  let lines = ['quillmate provenance — session ' . (session is v:null ? 'none (not kept: no file)' : session), '']
  for span in get(a:result, 'spans', [])
    let who = span.author ==# 'model' ? '[model ] ' : '[writer] '
    let first = 1
    for l in split(span.text, "\n", 1)
      call add(lines, (first ? who : repeat(' ', 9)) . l)
      let first = 0
    endfor
  endfor
  botright new
  setlocal buftype=nofile bufhidden=wipe noswapfile
  call setline(1, lines)
  setlocal nomodifiable
  nnoremap <buffer> <silent> q :close<CR>
endfunction

" Backend, model, context window and session, echoed (or given to Callback(result), {} on failure).
function! quillmate#info(...) abort
  call quillmate#attach()
  let Callback = a:0 ? a:1 : {r -> empty(r) ? 0 : s:echo_info(r)}
  call s:request('quillmate/contextInfo', {'textDocument': {'uri': s:uri(bufnr('%'))}},
        \ {msg -> Callback(get(msg, 'result', {}))})
endfunction

" Change the server's settings while it runs (the keys of g:quillmate_init_options).
function! quillmate#configure(settings) abort
  call s:when_ready({-> ch_sendexpr(s:job, {'method': 'workspace/didChangeConfiguration',
        \ 'params': {'settings': {'quillmate': a:settings}}})})
endfunction

function! s:echo_info(r) abort
  let context = get(a:r, 'loading', v:false) ? 'loading' : get(a:r, 'contextWindow', '') . ' tokens'
  let session = get(a:r, 'sessionId', v:null)
  echomsg printf('quillmate: backend %s · model %s · context %s · session %s',
        \ get(a:r, 'backend', ''), get(a:r, 'model', ''), context, session is v:null ? 'none' : session)
endfunction

function! quillmate#switch_backend(profile, ...) abort
  let args = [a:profile] + a:000
  " The server says how it went (window/showMessage); a failed switch keeps the old backend.
  call s:request('workspace/executeCommand', {'command': 'quillmate.switchBackend', 'arguments': args},
        \ {msg -> 0})
endfunction

" Apply a WorkspaceEdit from the server (code actions): TextEdits on loaded buffers.
function! s:apply_workspace_edit(edit) abort
  let changes = get(a:edit, 'changes', {})
  for dc in get(a:edit, 'documentChanges', [])
    let changes[dc.textDocument.uri] = get(changes, dc.textDocument.uri, []) + dc.edits
  endfor
  for [uri, edits] in items(changes)
    let buf = -1
    for info in getbufinfo({'bufloaded': 1})
      if s:uri(info.bufnr) ==# uri
        let buf = info.bufnr
      endif
    endfor
    if buf < 0
      return 0
    endif
    " Last edit first, so earlier positions stay valid.
    let sorted = sort(copy(edits), {a, b -> a.range.start.line != b.range.start.line
          \ ? b.range.start.line - a.range.start.line : b.range.start.character - a.range.start.character})
    for e in sorted
      let r = [e.range.start.line + 1, s:byte_col(buf, e.range.start),
            \ e.range.end.line + 1, s:byte_col(buf, e.range.end)]
      let lines = getbufline(buf, r[0], r[2])
      let before = strpart(get(lines, 0, ''), 0, r[1])
      let after = strpart(get(lines, -1, ''), r[3])
      if r[2] > line('$')
        let after = ''
      endif
      let new_lines = split(before . e.newText . after, "\n", 1)
      silent call deletebufline(buf, r[0], min([r[2], len(getbufline(buf, 1, '$'))]))
      call appendbufline(buf, r[0] - 1, new_lines)
    endfor
  endfor
  return 1
endfunction

" Word alternatives: the words the model almost wrote -------------------------

" The words of a suggestion: {word, offset}, offset counting characters (code
" points, as the server does) up to the word's first letter.
function! s:words_of(text) abort
  let words = []
  let [word, from, to] = matchstrpos(a:text, "[^ \t\n]\\+")
  while from >= 0
    call add(words, {'word': word, 'offset': strchars(strpart(a:text, 0, from))})
    let [word, from, to] = matchstrpos(a:text, "[^ \t\n]\\+", to)
  endwhile
  return words
endfunction

" The first `chars` characters of text (the server's offsets count code points).
function! s:chars_upto(text, chars) abort
  let at = byteidxcomp(a:text, a:chars)
  return at < 0 ? a:text : strpart(a:text, 0, at)
endfunction

" A word as the menus show it: quoted when it has a space at either end.
function! s:shown_word(text) abort
  let word = substitute(a:text, "\n", '\\n', 'g')
  return trim(word) ==# word ? word : '"' . word . '"'
endfunction

" Let the writer choose one of `lines`: a popup menu (j/k, <CR>, <Esc>), or a
" numbered list (inputlist()) with g:quillmate_menu = 'list' or without
" +popupwin. Callback(index) gets the 0-based choice; nothing when cancelled.
function! s:select(title, lines, Callback) abort
  if has('popupwin') && s:opt('menu', 'popup') !=# 'list'
    call popup_menu(a:lines, {'title': ' quillmate: ' . a:title . ' ',
          \ 'callback': {id, result -> result > 0 ? a:Callback(result - 1) : 0}})
    return
  endif
  let choice = inputlist(['quillmate: ' . a:title] + map(copy(a:lines), {i, line -> (i + 1) . '. ' . line}))
  if choice >= 1 && choice <= len(a:lines)
    call a:Callback(choice - 1)
  endif
endfunction

" Ask for the alternatives at `params`, let the writer choose one, then OnChoice(reply, choice).
function! s:choose_alternative(params, OnChoice) abort
  call s:request('quillmate/alternatives', a:params, function('s:on_alternatives', [a:OnChoice]))
endfunction

function! s:on_alternatives(OnChoice, msg) abort
  if has_key(a:msg, 'error')
    " The server has already shown its one line (window/showMessage).
    let s:last_error = substitute(get(a:msg.error, 'message', 'the request failed'), '^quillmate: ', '', '')
    return
  endif
  let reply = a:msg.result
  let options = get(reply, 'alternatives', [])
  if empty(options)
    echomsg 'quillmate: the model weighed no other words here'
    return
  endif
  let lines = map(copy(options), {_, o -> printf('%5.1f%%  %s%s', 100.0 * get(o, 'probability', 0),
        \ s:shown_word(o.text), o.text ==# reply.word ? '  (written)' : '')})
  call s:select('instead of ' . s:shown_word(reply.word), lines, {i -> a:OnChoice(reply, options[i].text)})
endfunction

" Show the words the model almost wrote at a word, and write again from the one
" chosen, keeping the words before it. With ghost text shown the word is one of
" the suggestion's (opts.word, its number, or chosen from a menu) and the new
" suggestion streams in as ghost text; without, the word under the cursor in
" model text accepted in this document, and the new words are previewed.
function! quillmate#alternatives(...) abort
  let opts = a:0 ? a:1 : {}
  let buf = bufnr('%')
  call quillmate#attach(buf)
  let g = get(s:ghosts, buf, {})
  let text = empty(g) ? '' : get(g.items, g.index, '')
  if text ==# ''
    if has_key(opts, 'word')
      return s:error('no suggestion is shown to take word ' . opts.word . ' from; without a number, the word under the cursor is used')
    endif
    let [lnum, col] = [line('.'), col('.') - 1]
    let params = {'textDocument': {'uri': s:uri(buf)}, 'position': s:lsp_pos(buf, lnum, col)}
    call s:choose_alternative(params, {reply, choice -> s:regenerate_accepted(buf, params, reply, choice)})
    return
  endif
  if g.pending
    return s:error('the model is still writing this suggestion; ask again once it has finished')
  endif
  let words = s:words_of(text)
  if has_key(opts, 'word')
    if opts.word < 1 || opts.word > len(words)
      return s:error(printf('the suggestion has %d words; there is no word %d', len(words), opts.word))
    endif
    call s:ghost_word(g, text, words[opts.word - 1])
    return
  endif
  call s:select('which word?', map(copy(words), 'v:val.word'), {i -> s:ghost_word(g, text, words[i])})
endfunction

function! s:ghost_word(g, text, word) abort
  let col = min([a:g.col, len(get(getbufline(a:g.buf, a:g.lnum), 0, ''))])
  let params = {'textDocument': {'uri': s:uri(a:g.buf)}, 'position': s:lsp_pos(a:g.buf, a:g.lnum, col),
        \ 'text': a:text, 'offset': a:word.offset}
  call s:choose_alternative(params, {reply, choice -> s:regenerate_ghost(a:g, extend(copy(params), {'choice': choice}),
        \ col, s:chars_upto(a:text, reply.start) . choice)})
endfunction

" The suggestion written again from the chosen word, streaming in as ghost text
" where the old one was; `lead` (the kept words and the choice) shows at once.
function! s:regenerate_ghost(old, params, col, lead) abort
  if get(s:ghosts, a:old.buf, {}) isnot a:old
    return s:warn('the suggestion changed while you chose; ask again')
  endif
  call quillmate#dismiss(a:old.buf)
  let stream = s:next_stream()
  let a:params.streamId = stream
  let g = s:new_ghost(a:old.buf, a:old.lnum, a:col, [a:lead], 0, stream)
  call s:render(g.buf)
  let s:streams[stream] = function('s:on_ghost_progress', [g])
  " The answer is one new suggestion: finish it as an inline completion's.
  let g.request = s:request('quillmate/regenerateFrom', a:params, {msg -> s:on_ghost_done(g, has_key(msg, 'error')
        \ ? msg : {'result': {'items': [{'insertText': get(msg.result, 'text', a:lead)}]}})})
endfunction

" Where text inserted at (lnum, col) ends.
function! s:end_of(lnum, col, text) abort
  let lines = split(a:text, "\n", 1)
  return len(lines) == 1 ? [a:lnum, a:col + len(a:text)] : [a:lnum + len(lines) - 1, len(lines[-1])]
endfunction

" Accepted model text written again from the chosen word: a preview that
" replaces it from that word on.
function! s:regenerate_accepted(buf, params, reply, choice) abort
  let start = a:reply.range.start
  let [lnum, col] = [start.line + 1, s:byte_col(a:buf, start)]
  let old = strpart(a:reply.text, len(s:chars_upto(a:reply.text, a:reply.start)))
  let title = 'words from ' . s:shown_word(a:reply.word) . ' with ' . s:shown_word(a:choice)
  call s:request_edit('quillmate/regenerateFrom', extend(copy(a:params), {'choice': a:choice}), title,
        \ [lnum, col] + s:end_of(lnum, col, old), {text, edit -> 0},
        \ {result -> strpart(result.text, len(s:chars_upto(result.text, result.start)))})
endfunction

" :Quillmate -------------------------------------------------------------------

let s:subcommands = ['continue', 'alternatives', 'rewrite', 'template', 'backend', 'provenance', 'info', 'attach', 'stop']
let s:presets = ['vivid', 'shorter', 'longer', 'simpler', 'past-tense', 'present-tense', 'first-person', 'third-person']

function! quillmate#command(range, line1, line2, args) abort
  let words = split(a:args)
  let sub = get(words, 0, 'continue')
  let rest = words[1:]
  let range = a:range > 0 ? s:command_range(a:line1, a:line2) : []
  if sub ==# 'continue'
    call quillmate#suggest()
  elseif sub ==# 'alternatives'
    if len(rest) > 1 || (!empty(rest) && rest[0] !~# '^\d\+$')
      return s:error("give the word's number in the suggestion, e.g. :Quillmate alternatives 3")
    endif
    call quillmate#alternatives(empty(rest) ? {} : {'word': str2nr(rest[0])})
  elseif sub ==# 'rewrite'
    call quillmate#rewrite(join(rest), empty(range) ? s:command_range(line('.'), line('.')) : range)
  elseif sub ==# 'template'
    if empty(rest)
      return s:error('name a template, e.g. :Quillmate template poem topic=sea')
    endif
    let variables = {}
    for pair in rest[1:]
      let m = matchlist(pair, '^\([A-Za-z0-9_-]\+\)=\(.*\)$')
      if empty(m)
        return s:error('template variables look like name=value, not ' . pair)
      endif
      let variables[m[1]] = m[2]
    endfor
    call quillmate#template(rest[0], variables, range)
  elseif sub ==# 'backend'
    if empty(rest)
      return s:error('name a backend profile, e.g. :Quillmate backend local')
    endif
    call call('quillmate#switch_backend', rest[:1])
  elseif sub ==# 'provenance'
    call quillmate#provenance(function('s:show_provenance'))
  elseif sub ==# 'info'
    call quillmate#info()
  elseif sub ==# 'attach'
    call quillmate#attach()
  elseif sub ==# 'stop'
    call quillmate#stop()
  else
    call s:error('unknown subcommand ' . sub . '; try one of: ' . join(s:subcommands, ', '))
  endif
endfunction

function! quillmate#complete(arglead, cmdline, pos) abort
  let words = split(a:cmdline[: a:pos - 1], '\s\+', 1)
  if len(words) <= 2
    let pool = s:subcommands
  elseif words[1] ==# 'rewrite' && len(words) == 3
    let pool = s:presets
  elseif words[1] ==# 'template' && len(words) == 3 && quillmate#ready()
    let reply = ch_evalexpr(s:job, {'method': 'quillmate/templates', 'params': {}}, {'timeout': 2000})
    let pool = map(copy(get(reply, 'result', [])), 'v:val.name')
  else
    return []
  endif
  return filter(copy(pool), 'stridx(v:val, a:arglead) == 0')
endfunction

function! quillmate#last_error() abort
  return s:last_error
endfunction
