" Drives editors/vim against the real `quillmate lsp`, headless (vim -es).
" Run by tests/editors/test_vim.py with QM_PLUGIN, QM_CMD, QM_FILE and
" QM_RESULT set; writes {"ok": true, ...} or {"ok": false, "error": ...}.
let s:result = {'ok': v:false, 'steps': []}

function! s:wait_for(what, cond, ...) abort
  let limit = a:0 ? a:1 : 60.0
  let start = reltime()
  while !eval(a:cond)
    if reltimefloat(reltime(start)) > limit
      throw 'timed out waiting for ' . a:what
    endif
    sleep 20m
  endwhile
endfunction

function! s:check(cond, msg) abort
  if !a:cond
    throw a:msg
  endif
endfunction

function! s:text() abort
  return join(getline(1, '$'), "\n")
endfunction

function! s:ghost_props() abort
  return filter(prop_list(1, {'end_lnum': -1}), 'get(v:val, "type", "") ==# "quillmate_ghost"')
endfunction

function! s:got_provenance(r) abort
  let s:prov = a:r
endfunction

function! s:run() abort
  execute 'set runtimepath^=' . fnameescape($QM_PLUGIN)
  filetype on
  runtime plugin/quillmate.vim
  let g:quillmate_cmd = json_decode($QM_CMD)
  let g:quillmate_init_options = {'params': {'max_new_tokens': 12, 'temperature': 0, 'seed': 7}}
  execute 'edit ' . fnameescape($QM_FILE)
  call s:check(&filetype ==# 'markdown', 'the buffer is not markdown: ' . &filetype)
  call s:wait_for('the server to start', 'quillmate#ready() && get(b:, "quillmate_version", 0) > 0')
  call add(s:result.steps, 'attached')
  let original = s:text()

  " Ghost text through the <Plug> mapping, after the last character.
  call cursor(line('$'), col([line('$'), '$']) - 1)
  execute "normal \<Plug>(quillmate-suggest)"
  call s:wait_for('the suggestion', '!empty(quillmate#suggestion()) && (quillmate#suggestion().done || quillmate#suggestion().error !=# "")')
  let s = quillmate#suggestion()
  call s:check(s.error ==# '', 'the suggestion failed: ' . s.error)
  let suggestion = s.text
  call s:check(suggestion =~# '\S', 'the suggestion is empty')
  let s:result.suggestion = suggestion
  let s:result.renders = s.renders
  call s:check(len(s.renders) >= 2, 'the ghost text was drawn only ' . len(s.renders) . ' time(s): no streaming')
  for i in range(1, len(s.renders) - 1)
    call s:check(s.renders[i] >= s.renders[i - 1], 'the ghost text shrank while streaming')
  endfor
  call s:check(s.renders[-1] > s.renders[0], 'the ghost text did not grow while streaming')
  let lines = split(suggestion, "\n", 1)
  let props = s:ghost_props()
  " Vim 9.0's prop_list() leaves out the virtual text, so compare the props
  " Vim holds with what the plugin says it placed.
  call s:check(!empty(props), 'no ghost text properties')
  call s:check(len(filter(copy(props), 'v:val.id < 0')) == len(props), 'the ghost text is not virtual text')
  call s:check(map(copy(s.shown), 'v:val[1]') == (lines[0] ==# '' ? [] : [lines[0]]) + map(lines[1:], 'empty(v:val) ? " " : v:val'),
        \ 'the virtual text is not the suggestion: ' . string(s.shown))
  call s:check(len(props) == len(s.shown), 'Vim holds ' . len(props) . ' props for ' . len(s.shown) . ' pieces')
  if lines[0] !=# ''
    call s:check(props[0].col == len(getline('$')) + 1 && s.shown[0][2] ==# 'inline',
          \ 'the first line is not inline at the cursor: ' . string(props))
  endif
  call s:check(len(filter(copy(s.shown), 'v:val[2] ==# "below"')) == len(lines) - 1, 'the rest is not below the line')
  call add(s:result.steps, 'ghost text')

  " Accept one word, then the rest.
  let word = matchstr(suggestion, '^\_s*\S\+')
  execute "normal \<Plug>(quillmate-accept-word)"
  call s:check(s:text() ==# original . word, 'accepting a word gave: ' . s:text())
  call s:check(quillmate#suggestion().text ==# strpart(suggestion, len(word)), 'the ghost text did not shrink by the word')
  execute "normal \<Plug>(quillmate-accept)"
  call s:check(s:text() ==# original . suggestion, 'accepting all gave: ' . s:text())
  call s:check(empty(quillmate#suggestion()), 'the ghost text stayed after accepting all')
  call s:check(empty(s:ghost_props()), 'text properties left after accepting')
  call add(s:result.steps, 'accept')

  let s:prov = v:null
  call quillmate#provenance(function('s:got_provenance'))
  call s:wait_for('provenance', 's:prov isnot v:null')
  call s:check(!empty(s:prov), 'provenance failed')
  let by_model = join(map(filter(copy(s:prov.spans), 'v:val.author ==# "model"'), 'v:val.text'), '')
  call s:check(stridx(by_model, trim(suggestion)) >= 0, 'the session does not credit the model with: ' . suggestion)
  let s:result.provenance = s:prov
  call add(s:result.steps, 'provenance')

  " Rewrite the first line: reject leaves it, accept replaces it.
  let before = s:text()
  1Quillmate rewrite shorter
  call s:wait_for('the rewrite', '!empty(quillmate#preview()) && (quillmate#preview().new isnot v:null || quillmate#preview().error !=# "")')
  call s:check(quillmate#preview().error ==# '', 'rewrite failed: ' . quillmate#preview().error)
  call s:check(quillmate#preview_reject(), 'no preview to reject')
  call s:check(s:text() ==# before, 'rejecting a rewrite changed the text')
  call s:check(empty(quillmate#preview()), 'the preview stayed open after rejecting')
  call add(s:result.steps, 'rewrite reject')

  1Quillmate rewrite vivid
  call s:wait_for('the rewrite', '!empty(quillmate#preview()) && (quillmate#preview().new isnot v:null || quillmate#preview().error !=# "")')
  let new = quillmate#preview().new
  call s:check(quillmate#preview_accept(), 'accepting the rewrite failed')
  let expected = join(split(new, "\n", 1) + split(before, "\n", 1)[1:], "\n")
  call s:check(s:text() ==# expected, 'the accepted rewrite is not in the buffer: ' . s:text())
  let s:result.rewrite = new
  call add(s:result.steps, 'rewrite accept')

  " Cancel a long continuation while it streams.
  let before_cancel = s:text()
  call quillmate#suggest({'max_new_tokens': 400, 'lnum': line('$'), 'col': len(getline('$'))})
  call s:wait_for('streaming to begin', '!empty(quillmate#suggestion().renders) || !quillmate#suggestion().pending')
  call s:check(quillmate#suggestion().pending, 'the long continuation finished before it could be cancelled')
  let t0 = reltime()
  execute "normal \<Plug>(quillmate-cancel)"
  call s:wait_for('the cancelled request to end', '!quillmate#suggestion().pending', 10.0)
  let s:result.cancel_ms = reltimefloat(reltime(t0)) * 1000
  let after = quillmate#suggestion()
  call s:check(after.cancelled, 'the request was not answered as cancelled (error: ' . after.error . ')')
  call s:check(s:text() ==# before_cancel, 'cancelling changed the text')
  execute "normal \<Plug>(quillmate-dismiss)"
  call s:check(empty(quillmate#suggestion()), 'dismiss left the suggestion')
  call add(s:result.steps, 'cancel')

  let s:result.ok = v:true
endfunction

try
  call s:run()
catch
  let s:result.error = v:exception . ' (' . v:throwpoint . ')'
endtry
silent! call quillmate#stop()
call writefile([json_encode(s:result)], $QM_RESULT)
qall!
