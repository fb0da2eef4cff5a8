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

function! s:got_info(r) abort
  let s:info = a:r
endfunction

function! s:provenance() abort
  let s:prov = v:null
  call quillmate#provenance(function('s:got_provenance'))
  call s:wait_for('provenance', 's:prov isnot v:null')
  call s:check(!empty(s:prov), 'provenance failed')
  return s:prov
endfunction

function! s:model_text(prov) abort
  return join(map(filter(copy(a:prov.spans), 'v:val.author ==# "model"'), 'v:val.text'), '')
endfunction

function! s:wait_suggestion(what) abort
  call s:wait_for(a:what, '!empty(quillmate#suggestion()) && !quillmate#suggestion().pending'
        \ . ' && (quillmate#suggestion().done || quillmate#suggestion().error !=# "")')
  let s = quillmate#suggestion()
  call s:check(s.error ==# '', a:what . ' failed: ' . s.error)
  return s
endfunction

" What the plugin says it placed for a suggestion's text (see s:render).
function! s:expected_shown(text) abort
  let lines = split(a:text, "\n", 1)
  return (lines[0] ==# '' ? [] : [lines[0]]) + map(lines[1:], 'empty(v:val) ? " " : v:val')
endfunction

function! s:last_message() abort
  return get(split(execute('messages'), "\n"), -1, '')
endfunction

" The lines of the one popup menu shown (waited for).
function! s:menu(what) abort
  call s:wait_for(a:what, 'len(popup_list()) == 1')
  return getbufline(winbufnr(popup_list()[0]), 1, '$')
endfunction

" The word an alternatives menu line offers ("  12.5%  \" sea\"  (written)").
function! s:offered_word(line) abort
  let m = matchlist(a:line, '^\s*\d\+\.\d%  \(.\{-}\)\%(  (written)\)\=$')
  call s:check(!empty(m), 'an alternative without its probability: ' . a:line)
  let word = m[1] =~# '^".*"$' ? m[1][1:-2] : m[1]
  return substitute(word, '\\n', "\n", 'g')
endfunction

function! s:check_one_line(what, pattern) abort
  call s:wait_for(a:what, 's:last_message() =~# ' . string(a:pattern))
  let line = s:last_message()
  call s:check(line =~# '^quillmate: ' && line !~# "\n" && line !~# 'Traceback', a:what . ' is not one line: ' . line)
  return line
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
  let word = matchstr(suggestion, "^\\_s*[^ \t\n]\\+")
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

  " Alternatives: from one suggestion, next asks for two and shows the second;
  " prev and next cycle through them, wrapping around. Sampled (seeded), so they differ.
  let g:quillmate_alternatives = 2
  call quillmate#configure({'params': {'max_new_tokens': 12, 'temperature': 0.9, 'seed': 7}})
  call cursor(line('$'), col([line('$'), '$']) - 1)
  let before_alternatives = s:text()
  call quillmate#suggest()
  call s:check(s:wait_suggestion('the first suggestion').count == 1, 'one suggestion was asked for')
  execute "normal \<Plug>(quillmate-next)"
  let alt = s:wait_suggestion('the alternatives')
  call s:check(alt.count == 2 && alt.index == 1, 'next did not show the second of two: ' . string(alt))
  let texts = ['', '']
  for key in ['prev', 'prev', 'next']
    let before_index = quillmate#suggestion().index
    execute "normal \<Plug>(quillmate-" . key . ")"
    let cur = quillmate#suggestion()
    " With two, either way is the other one.
    call s:check(cur.index == 1 - before_index, key . ' showed ' . cur.index . ' after ' . before_index)
    call s:check(map(copy(cur.shown), 'v:val[1]') == s:expected_shown(cur.text),
          \ 'the virtual text is not alternative ' . cur.index . ': ' . string(cur.shown))
    " One more prop than pieces of text: the (i/2) label.
    call s:check(len(s:ghost_props()) == len(cur.shown) + 1, 'no (i/2) label while cycling')
    let texts[cur.index] = cur.text
  endfor
  let s:result.alternatives = texts
  call s:check(texts[0] !=# texts[1], 'the two alternatives are the same: ' . texts[0])
  execute "normal \<Plug>(quillmate-accept)"
  call s:check(s:text() ==# before_alternatives . texts[0], 'accepting the alternative shown gave: ' . s:text())
  call quillmate#configure({'params': {'max_new_tokens': 12, 'temperature': 0, 'seed': 7}})
  call add(s:result.steps, 'alternatives')

  " Word alternatives on ghost text: the <Plug> map offers its words in a popup
  " menu; on the second, the words the model weighed there with their
  " probabilities; choosing the second of those writes again from it (streaming),
  " keeping the words before it.
  call cursor(line('$'), col([line('$'), '$']) - 1)
  let before_words = s:text()
  call quillmate#suggest()
  let ghost = s:wait_suggestion('the suggestion to choose a word in').text
  let prefix = matchstr(ghost, "^\\_s*[^ \t\n]\\+")
  let space = matchstr(strpart(ghost, len(prefix)), '^\_s*')
  call s:check(strpart(ghost, len(prefix)) =~# '\S', 'the suggestion has fewer than two words: ' . ghost)
  execute "normal \<Plug>(quillmate-alternatives)"
  let words = s:menu('the menu of words')
  call s:check(words == split(ghost), 'the menu does not list the suggestion''s words: ' . string(words))
  call feedkeys("j\<CR>", 'xt')
  call s:wait_for('the words menu to close', 'empty(popup_list())', 5.0)
  let offered = s:menu('the alternatives')
  let s:result.word_alternatives = offered
  call s:check(len(offered) >= 3, 'fewer than three alternatives: ' . string(offered))
  call s:check(offered[0] =~# '  (written)$', 'the written word is not the likeliest at temperature 0: ' . string(offered))
  let chosen = s:offered_word(offered[1])
  call map(copy(offered), 's:offered_word(v:val)')
  call feedkeys("j\<CR>", 'xt')
  let again = s:wait_suggestion('the suggestion written again')
  let s:result.regenerated = again.text
  " Drawn once with the kept words and the choice, once at the end: more means it streamed.
  call s:check(len(again.renders) >= 4, 'the new suggestion was drawn only ' . len(again.renders) . ' time(s): no streaming')
  call s:check(stridx(again.text, prefix) == 0, 'the words before the chosen one changed: ' . again.text)
  let at = strpart(again.text, len(prefix))
  call s:check(stridx(at, chosen) == 0 || stridx(at, space . chosen) == 0,
        \ 'the chosen word ' . string(chosen) . ' does not follow the kept words: ' . again.text)
  call s:check(again.text !=# ghost, 'the suggestion did not change: ' . ghost)
  call s:check(map(copy(again.shown), 'v:val[1]') == s:expected_shown(again.text), 'the ghost text does not show the new suggestion')
  call s:check(s:text() ==# before_words, 'choosing a word changed the buffer')
  execute "normal \<Plug>(quillmate-accept)"
  call s:check(s:text() ==# before_words . again.text, 'accepting the new suggestion gave: ' . s:text())

  " The same word, now accepted text, with the cursor on it and the numbered
  " list instead of the popup: the first choice; the new words replace the old
  " from there, through the preview.
  let upto = split(before_words . strpart(again.text, 0, len(prefix) + len(space)), "\n", 1)
  call cursor(len(upto), len(upto[-1]) + 1)
  let g:quillmate_menu = 'list'
  redir => s:listed
  call feedkeys("1\<CR>", 't')
  QuillmateAlternatives
  call s:wait_for('the preview', '!empty(quillmate#preview()) && (quillmate#preview().new isnot v:null || quillmate#preview().error !=# "")')
  redir END
  unlet g:quillmate_menu
  let redo = quillmate#preview()
  call s:check(redo.error ==# '', 'writing again from accepted text failed: ' . redo.error)
  " The list as :redir saw it: "quillmate: instead of ...", "1. ...", "2. ...".
  let first = matchlist(s:listed, 'quillmate: instead of [^\n]\{-}\_s\+1\. \([^\n]\{-}\)\_s\+2\. ')
  call s:check(!empty(first), 'the numbered list was not shown: ' . s:listed)
  let chosen = s:offered_word(first[1])
  let kept = strpart(again.text, 0, len(prefix) + len(space) - len(matchstr(chosen, '^\_s*')))
  call s:check(redo.old ==# strpart(again.text, len(kept)), 'the preview does not replace from the word on: ' . redo.old)
  call s:check(stridx(redo.new, chosen) == 0, 'the preview does not start with the chosen word ' . string(chosen) . ': ' . redo.new)
  call s:check(quillmate#preview_accept(), 'accepting the new words failed')
  call s:check(s:text() ==# before_words . kept . redo.new,
        \ 'the new words did not replace the old from the word on: ' . s:text())
  call s:check(stridx(s:model_text(s:provenance()), trim(redo.new)) >= 0, 'the session does not credit the model with the new words')

  " One clear line when there is nothing to offer.
  let before_errors = s:text()
  call cursor(1, 3)
  QuillmateAlternatives
  let s:result.no_text_message = s:check_one_line('the message on the writer''s words', 'There is no text from a suggestion at this position')
  Quillmate alternatives many
  call s:check_one_line('the message on a bad word number', 'give the word''s number')
  call quillmate#configure({'params': {'max_new_tokens': 12, 'temperature': 0, 'seed': 7, 'logprobs': 0}})
  call cursor(line('$'), col([line('$'), '$']) - 1)
  call quillmate#suggest()
  call s:wait_suggestion('a suggestion without alternatives')
  QuillmateAlternatives 99
  call s:check_one_line('the message on a word past the end', 'there is no word 99')
  QuillmateAlternatives 1
  let s:result.no_alternatives_message = s:check_one_line('the message on text without alternatives', 'This text has no word alternatives')
  call s:check(empty(popup_list()), 'a menu opened with nothing to offer')
  execute "normal \<Plug>(quillmate-dismiss)"
  call quillmate#configure({'params': {'max_new_tokens': 12, 'temperature': 0, 'seed': 7}})
  call s:check(s:text() ==# before_errors, 'asking for alternatives with none changed the text')
  call add(s:result.steps, 'word alternatives')

  " A template on a selection: the poem comes as ghost text after it, as a new
  " paragraph; accepting line by line inserts it.
  let before_template = s:text()
  let s:error_before = quillmate#last_error()
  3Quillmate template poem
  call s:wait_for('the poem', '(!empty(quillmate#suggestion()) && quillmate#suggestion().done) || quillmate#last_error() !=# s:error_before')
  call s:check(empty(quillmate#preview()), 'the preview stayed open for a template that inserts')
  let poem = quillmate#suggestion()
  call s:check(!empty(poem) && poem.text[:1] ==# "\n\n" && poem.text =~# '\S', 'the poem is not a new paragraph: ' . string(poem))
  call s:check(empty(filter(s:ghost_props(), 'v:val.lnum != 3')), 'the poem is not shown after the selection: ' . string(s:ghost_props()))
  let s:result.poem = poem.text
  let inserted = ''
  for i in range(2)
    let rest = quillmate#suggestion().text
    let part = matchstr(rest, "^\n\\?[^\n]*")
    execute "normal \<Plug>(quillmate-accept-line)"
    let inserted .= part
    call s:check(empty(quillmate#suggestion()) || quillmate#suggestion().text ==# strpart(rest, len(part)),
          \ 'the ghost text did not lose its first line')
  endfor
  let lines_before = split(before_template, "\n", 1)
  let expected = lines_before[:2] + split(inserted, "\n", 1)[1:] + lines_before[3:]
  call s:check(s:text() ==# join(expected, "\n"), 'accepting two lines of the poem gave: ' . s:text())
  call s:check(trim(inserted) !=# '', 'accept-line inserted no words of the poem')
  execute "normal \<Plug>(quillmate-dismiss)"
  call s:check(stridx(s:model_text(s:provenance()), trim(inserted)) >= 0,
        \ 'the session does not credit the model with the poem line: ' . inserted)
  call add(s:result.steps, 'template, accept line')

  " :Quillmate info and the provenance window.
  Quillmate info
  call s:wait_for('the info message', 's:last_message() =~# "^quillmate: backend "')
  let s:result.info = s:last_message()
  call s:check(s:last_message() =~# '^quillmate: backend local · model .* · context \d\+ tokens · session \x\+$',
        \ 'the info is not backend, model, context and session: ' . s:last_message())
  let windows = winnr('$')
  Quillmate provenance
  call s:wait_for('the provenance window', 'winnr("$") > ' . windows)
  let shown_lines = getline(1, '$')
  call s:check(shown_lines[0] =~# '^quillmate provenance — session \x\+$',
        \ 'the provenance window has no session: ' . shown_lines[0])
  " The accepted word may run on into the model's next words on the same line.
  call s:check(match(shown_lines, '^\V' . escape('[model ] ' . word, '\')) >= 0, 'the provenance window does not show the model''s words ' . string(word) . ': ' . string(shown_lines))
  call s:check(index(shown_lines, '[writer] # The lighthouse') >= 0, 'the provenance window does not show the writer''s words: ' . string(shown_lines))
  normal q
  call s:check(winnr('$') == windows, 'q did not close the provenance window')
  call add(s:result.steps, 'info, provenance window')

  " Switching backend: a profile works; an unknown one is one line and keeps the old one.
  call quillmate#switch_backend('local')
  call s:wait_for('the switch to local', 's:last_message() =~# "now writing with local"')
  call s:check(s:last_message() =~# '^quillmate: now writing with local', 'the switch was announced as: ' . s:last_message())
  Quillmate backend no-such-profile
  call s:wait_for('the failed switch', 'quillmate#last_error() =~# "no-such-profile"')
  let failure = quillmate#last_error()
  let s:result.switch_error = failure
  call s:check(failure !~# "\n" && failure !~# '^quillmate: ' && failure !~# 'Traceback',
        \ 'the failed switch is not one line: ' . failure)
  let s:info = v:null
  call quillmate#info(function('s:got_info'))
  call s:wait_for('the info', 's:info isnot v:null')
  call s:check(get(s:info, 'backend', '') ==# 'local' && !get(s:info, 'loading', v:true),
        \ 'the old backend was not kept: ' . string(s:info))
  call add(s:result.steps, 'switch backend')

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
