/* placeholder: being written */
%{
int yylex(void);
void yyerror(const char *);
%}
%%
grammar: ;
%%
